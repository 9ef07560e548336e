"""The pure kernel that the planner (plan/) and the policy pack (policies/lws_guard) both import: units, the
catalogs (GPUs, LWS releases, checkpoints), sizing, rules, engine commands, shell and image reading, and the
LWS API names. It reads no stack config: config/ and plan/ build on it, never the other way round."""
