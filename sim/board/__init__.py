"""The open-flow board's SoC (:class:`sparsa.hw.link_soc.LinkSoC`) in simulation, its UART
pins joined to a socket so that the host runtime talks to it as to a board's serial port."""
