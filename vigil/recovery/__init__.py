"""Recovery: what follows a host failure once its consumers know: fence the host, then recover its instances."""
