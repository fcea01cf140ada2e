"""Rampart: a secure, scalable microservices platform as one Pulumi program."""
