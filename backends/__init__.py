"""snnc.backends: lower a compiled graph to something that runs (Nengo, NengoLoihi, refsim)."""
