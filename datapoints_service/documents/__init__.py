"""Documents: CSV uploads of datapoints, processed on the RQ worker into source datapoints,
reconciled with the master lists through the maps."""
