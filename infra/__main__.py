"""Entry point run by the Pulumi CLI (`main: infra/` in Pulumi.yaml) and by `rampart plan`."""

from infra.program import main

main()
