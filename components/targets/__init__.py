"""Targets: where the platform runs. `kubernetes` (an existing cluster) or `aws` (VPC and EKS)."""
