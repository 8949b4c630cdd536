"""The vendor-neutral engine: clock, model, catalogue, engine, accounts, ports."""
