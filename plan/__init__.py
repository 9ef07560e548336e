"""The deployment plan: pure functions from the stack config (config/) to every number and object a group
needs, on the kernel (kernel/) the policy pack shares."""
