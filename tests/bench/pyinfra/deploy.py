"""What xfed's xmpp-gateway module does on every edge server, as a pyinfra
deploy (tests/bench/README.md): the same binary compared by checksum
(`files.put`), the same two files rendered from xfed's own templates with the
same variables (`files.template`), and the same service check (the pid file
names a live process), read as a fact so that `--dry` reads it too.

Variables come from the inventory tests/bench/run generates
(tests/bench/out/pyinfra/inventory.py).
"""

import os
import shlex
import sys

from jinja2.ext import Extension

from pyinfra import host
from pyinfra.api import FactBase
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from toml_value import toml_value  # noqa: E402


class GatewayRunning(FactBase):
    """Whether the pid file names a live, non-zombie process: the test xfed's
    observe script makes for a `direct` service."""

    def command(self, pid_file):
        return (
            "pid=$(head -c 32 -- {0} 2>/dev/null | tr -cd 0-9); state=; "
            '[ -n "$pid" ] && [ "$pid" != 0 ] && '
            "state=$(sed -n 's/^State:[[:space:]]*\\([A-Z]\\).*/\\1/p' /proc/$pid/status 2>/dev/null); "
            'if [ -n "$state" ] && [ "$state" != Z ]; then echo running; else echo stopped; fi'
        ).format(shlex.quote(pid_file))

    def process(self, output):
        return bool(output) and output[0].strip() == "running"


d = host.data
gw = d.gateway
q = shlex.quote
pid_file = f"{gw['state_dir']}/run/xfed-gateway.pid"
binary = f"{gw['install_dir']}/bin/xfed-gateway"
log_file = f"{gw['state_dir']}/log/xfed-gateway.log"
config = f"{gw['config_dir']}/gateway.toml"

# The same context xfed's templates see (src/modules/expand.rs).
context = dict(
    server=d.server,
    gateway=gw,
    xmpp_domains=d.xmpp_domains,
    topology_version=d.topology_version,
    partners=d.partners,
    policies=d.policies,
    grants=d.grants,
    tls=d.tls,
    relay=d.relay,
    ca=d.ca,
    topology=d.topology,
)


class TomlFilter(Extension):
    """xfed's templates use a `toml` filter (tests/bench/toml_value.py)."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.filters["toml"] = toml_value


def jinja():
    # xfed renders with trim_blocks, lstrip_blocks and the trailing newline
    # kept (pyinfra keeps it already); a fresh dict each time, pyinfra pops from it
    return {"trim_blocks": True, "lstrip_blocks": True, "extensions": [TomlFilter]}


put_binary = files.put(
    name="gateway binary, compared by checksum",
    src=d.gateway_binary,
    dest=binary,
    user="root",
    group="root",
    mode="755",
    add_deploy_dir=False,
)

gateway_toml = files.template(
    name="gateway.toml",
    src=f"{d.xfed_modules}/xmpp-gateway/gateway.toml.j2",
    dest=config,
    user="root",
    group="root",
    mode="640",
    jinja_env_kwargs=jinja(),
    **context,
)

policy_toml = files.template(
    name="policy.toml",
    src=f"{d.xfed_modules}/xmpp-gateway/policy.toml.j2",
    dest=f"{gw['config_dir']}/policy.toml",
    user="root",
    group="root",
    mode="640",
    jinja_env_kwargs=jinja(),
    **context,
)

start = (
    f"mkdir -p -- {q(gw['state_dir'] + '/run')} {q(gw['state_dir'] + '/log')} && rm -f -- {q(pid_file)} && "
    f"{{ setsid {q(binary)} --config {q(config)} >>{q(log_file)} 2>&1 </dev/null & }} && "
    f"n=0; while [ ! -s {q(pid_file)} ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n + 1)); done; "
    f"[ -s {q(pid_file)} ]"
)
stop = (
    f"pid=$(head -c 32 -- {q(pid_file)} 2>/dev/null | tr -cd 0-9); "
    'if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; '
    'n=0; while kill -0 "$pid" 2>/dev/null && [ $n -lt 300 ]; do sleep 0.05; n=$((n + 1)); done; '
    f'kill -KILL "$pid" 2>/dev/null; fi; rm -f -- {q(pid_file)}'
)

if not host.get_fact(GatewayRunning, pid_file=pid_file):
    server.shell(name="start xfed-gateway", commands=[start])
else:
    # as xfed's `notify`: a new binary or gateway.toml restarts, a new policy reloads
    server.shell(
        name="restart gateway",
        commands=[f"{stop}; {start}"],
        _if=any_changed(put_binary, gateway_toml),
    )
    server.shell(
        name="reload gateway",
        commands=[f'pid=$(head -c 32 -- {q(pid_file)} 2>/dev/null | tr -cd 0-9); [ -n "$pid" ] && kill -HUP "$pid"'],
        _if=policy_toml.did_change,
    )
