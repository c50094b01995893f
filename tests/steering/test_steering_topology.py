"""The topology file: the shipped sample, checks that name the bad key, and the resolved copy."""
from __future__ import annotations

import tomllib

import pytest

from vodstack.errors import ConfigError
from vodstack.supervisor import resolve_ports
from vodstack.topology import SAMPLE_TOPOLOGY, load_topology, parse_topology


def sample() -> dict:
    return tomllib.loads(SAMPLE_TOPOLOGY.read_text())


def test_sample_has_three_regions_of_an_origin_and_two_edges():
    topo = load_topology(SAMPLE_TOPOLOGY, env={})
    assert [r.name for r in topo.regions] == ["us-east-1", "us-west-2", "eu-west-1"]
    assert all(len(r.edges) == 2 and r.origin.port for r in topo.regions)
    assert topo.keys.active in topo.keys.secrets and topo.steering.admin_key
    inputs = topo.steering_inputs()
    assert len(inputs.edges) == 6 and inputs.regions[0].origin_urls == ("http://127.0.0.1:8101",)
    assert topo.url_of("edge-eu-west-1b") == "http://127.0.0.1:8206"


def test_written_topology_reads_back_equal():
    topo = parse_topology(sample(), env={})
    assert parse_topology(tomllib.loads(topo.to_toml()), env={}) == topo


def mutate(path: str, value):
    data = sample()
    *parents, last = path.split("/")
    node = data
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize("path,value,message", [
    ("regions/us-east-1/edges/0/rammb", 5, "regions.us-east-1.edges[0].rammb: unknown key"),
    ("regions/us-east-1/edges/0/ram_mb", "lots", "regions.us-east-1.edges[0].ram_mb: expected a number"),
    ("regions/us-east-1/edges/0/port", 8202, "regions.us-east-1.edges[1].port: 8202 on 127.0.0.1 is also the port of edge-us-east-1a"),
    ("regions/us-east-1/edges/0/peers", ["edge-nowhere"], "regions.us-east-1.edges[0].peers: 'edge-nowhere'"),
    ("regions/us-east-1/edges/0/name", "edge us", "only letters, digits"),
    ("regions/us-east-1/edges/1/name", "edge-us-east-1a", "'edge-us-east-1a' is used twice"),
    ("regions/us-east-1/preference", ["mars-1"], "regions.us-east-1.preference: 'mars-1'"),
    ("regions/us-east-1/origin", KeyError, "regions.us-east-1.origin: missing"),
    ("regions/us-east-1/edges", [], "regions.us-east-1.edges: expected at least one"),
    ("keys/active", "k9", "keys.active: 'k9' is not in keys.secrets"),
    ("keys/secrets", {}, "keys.secrets: at least one"),
    ("steering/ttl", 5, "steering.ttl: unknown key"),
    ("steering/steering_ttl_s", 0, "steering_ttl_s must be at least 1"),
    ("steering/heartbeat_timeout_s", 0.5, "steering.heartbeat_timeout_s (0.5) must be longer"),
    ("stack/colour", "red", "stack.colour: unknown key"),
    ("regions", {}, "regions: at least one region"),
])
def test_bad_topologies_name_the_key(path, value, message):
    with pytest.raises(ConfigError) as e:
        parse_topology(mutate(path, value), env={})
    assert message in str(e.value)


def test_environment_overrides_steering_settings():
    topo = parse_topology(sample(), env={"VODSTACK_STEERING_STEERING_TTL_S": "9"})
    assert topo.steering.steering_ttl_s == 9 and topo.steering.port == 8400
    with pytest.raises(ConfigError, match="VODSTACK_STEERING_PORT"):
        parse_topology(sample(), env={"VODSTACK_STEERING_PORT": "many"})


def test_zero_ports_are_resolved_to_distinct_free_ports():
    data = sample()
    data["stack"]["control_port"] = 0
    data["steering"]["port"] = 0
    for region in data["regions"].values():
        region["origin"]["port"] = 0
        for e in region["edges"]:
            e["port"] = 0
    topo = resolve_ports(parse_topology(data, env={}))
    ports = [o.port for o in topo.origins] + [e.port for e in topo.edges] + [topo.steering.port,
                                                                              topo.stack.control_port]
    assert 0 not in ports and len(set(ports)) == len(ports) == 11
    assert topo.steering_table["port"] == topo.steering.port


def test_commands_turn_a_bad_topology_into_one_line(tmp_path):
    import subprocess
    import sys
    bad = tmp_path / "bad.toml"
    bad.write_text('[keys.secrets]\nk1 = "x"\n[regions.a]\norigin = { name = "o", port = 1 }\n'
                   '[[regions.a.edges]]\nname = "e"\nrammb = 3\n')
    for args in (["steering", "--topology", str(bad)], ["up", str(bad)], ["up", str(bad), "--kill", "e"]):
        out = subprocess.run([sys.executable, "-m", "vodstack", *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2
        assert out.stderr == "vodstack: error: regions.a.edges[0].rammb: unknown key (known: args, capacity_mbps, " \
                             "disk_mb, host, name, parents, peers, port, ram_mb)\n"


def test_a_topology_across_hosts_shares_ports_and_splits_into_shares():
    data = sample()
    for i, (rname, region) in enumerate(data["regions"].items()):
        host = f"10.0.0.{i + 1}"
        region["origin"]["host"] = host
        region["origin"]["port"] = 8101
        for j, edge in enumerate(region["edges"]):
            edge["host"], edge["port"] = host, 8201 + j  # the same ports on every host
    data["steering"]["host"] = "10.0.0.9"
    topo = parse_topology(data, env={})
    assert topo.url_of("origin-eu-west-1") == "http://10.0.0.3:8101"
    assert parse_topology(tomllib.loads(topo.to_toml()), env={}) == topo  # hosts survive the resolved copy
    assert topo.share(only=["eu-west-1"]) == {"origin-eu-west-1", "edge-eu-west-1a", "edge-eu-west-1b"}
    assert topo.share(only=["steering"], host="10.0.0.1") == {"steering", "origin-us-east-1", "edge-us-east-1a",
                                                              "edge-us-east-1b"}
    assert topo.share() == set(topo.server_names())
    with pytest.raises(ConfigError, match="--only: 'mars' is neither a region"):
        topo.share(only=["mars"])
    with pytest.raises(ConfigError, match="--host: no server of the topology is on 10.9.9.9"):
        topo.share(host="10.9.9.9")
    data["regions"]["eu-west-1"]["edges"][1]["port"] = 8201  # the same host and port twice
    with pytest.raises(ConfigError, match="port: 8201 on 10.0.0.3 is also the port of edge-eu-west-1a"):
        parse_topology(data, env={})


def test_another_hosts_server_needs_its_port():
    from vodstack.supervisor import StackError

    data = sample()
    data["regions"]["us-west-2"]["edges"][0]["port"] = 0
    topo = parse_topology(data, env={})
    with pytest.raises(StackError, match="edge-us-west-2a run elsewhere"):
        resolve_ports(topo, topo.share(only=["eu-west-1"]))
    assert resolve_ports(topo, topo.share(only=["us-west-2"])).edge("edge-us-west-2a").port != 0
