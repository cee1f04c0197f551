"""The six specialist agents: their roster, the local analysts and the reasoning backends."""
