"""Running the external tools: lint, simulation, synthesis."""
