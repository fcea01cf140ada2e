"""The `aws` target: network, EKS cluster, nodes, add-ons, from raw pulumi-aws resources."""
