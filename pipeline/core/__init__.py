"""What every stage shares: params, artifact I/O, errors, the stage runner, devices, processes."""
