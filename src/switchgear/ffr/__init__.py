"""FFR aggregation: groups of controllers in a grid programme, their events and evidence."""
