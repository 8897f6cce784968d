"""Helpers of the Amaranth-simulator testbenches."""


async def until(ctx, signal, limit=100):
    """Tick until ``signal`` is high; an AssertionError after ``limit`` cycles (a hang fails the
    test instead of running forever)."""
    for _ in range(limit):
        if ctx.get(signal):
            return
        await ctx.tick()
    raise AssertionError(f"{signal.name} never came within {limit} cycles")
