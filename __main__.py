"""The program: stack config -> plan -> components -> outputs.

Every number of every group is derived and checked by the plan before any resource is declared; a
config that cannot work stops here with one line per problem, each naming its config key.
"""

from __future__ import annotations

import pulumi

from components.stack import deploy
from config.load import ConfigError, from_pulumi
from plan.group import PlanError, plan_stack


def main() -> None:
    try:
        config, secrets = from_pulumi()
        plan = plan_stack(config)
    except (ConfigError, PlanError) as error:
        raise pulumi.RunError(f"the stack config cannot work; nothing was applied:\n{error}") from None
    for advisory in plan.advisories:
        pulumi.log.warn(str(advisory))
    deployed = deploy(config, secrets, plan)
    for name, group in deployed.groups.items():
        pulumi.export(f"{name}.url", group.url)
        pulumi.export(f"{name}.plan", group.plan)
        if deployed.operations[name].bounds:
            pulumi.export(f"{name}.autoscaling", deployed.operations[name].autoscaling)
    pulumi.export("lwsVersion", deployed.controller.version)


main()
