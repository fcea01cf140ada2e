"""The Rampart reliability policy pack (rules live in policies/rules/; this only serves them)."""

from policies.adapter import serve_pack

serve_pack(
    "reliability",
    "Replicas, disruption budgets, zone spread, protected and backed-up stateful resources.",
)
