"""The player side: ABR algorithms (``client.abr``), traces (``client.traces``), the trace-driven
simulator (``client.sim``), QoE metrics (``client.qoe``), and the live player and load tester."""
