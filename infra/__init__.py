"""The Pulumi program: read and validate config once, compose the platform, export outputs."""
