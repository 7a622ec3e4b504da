"""cocotb testbenches (run inside the simulator) and their shared stream drivers."""
