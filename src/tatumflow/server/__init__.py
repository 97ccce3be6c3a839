"""Long-running front ends: the MelodyVAE session and its OSC control server."""
