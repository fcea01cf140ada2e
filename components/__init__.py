"""Rampart's ComponentResources: one module per concern. Components take typed
arguments and never read Pulumi config themselves."""
