"""Rampart's policy-as-code: rules as plain, importable functions (policies/rules/), adapted
to pulumi_policy packs (policies/<pack>/) and enforced per environment (policies/config/)."""
