"""Software side of sparsa: compression, the EIE format, packing and golden models."""
