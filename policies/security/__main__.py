"""The Rampart security policy pack (rules live in policies/rules/; this only serves them)."""

from policies.adapter import serve_pack

serve_pack(
    "security",
    "Encryption at rest and in transit, network fencing, Pod Security Standards restricted, zero-trust mesh.",
)
