"""Writes the schemathesis configuration of scripts/schemathesis.sh (the seeded ids).

Usage: config.py OUT URL AUTH CA TX_ID DAY MEMBER

Every operation with an id in its path gets ids of data the script made before the run
(a finalized transaction, a filled and a resting order, their pair's book, a trade, a settled cycle, a
governance proposal, the ended business day DAY and MEMBER's statement of it), read back from
the node, so its cases reach the handler's logic instead of 404 (schemathesis' "missing
test data" warning). Any warning fails the run (`warnings.fail-on`).
"""

import json
import ssl
import sys
import urllib.request

out, url, auth, ca, tx_id, day, member = sys.argv[1:]
tls = ssl.create_default_context(cafile=ca) if ca else None


def get(path: str):
    request = urllib.request.Request(url + path, headers={"Authorization": auth})
    with urllib.request.urlopen(request, context=tls, timeout=10) as answer:
        return json.load(answer)


def first(document: dict, name: str, what: str):
    items = document.get(name) or []
    if not items:
        sys.exit(f"schemathesis: the seeded data has no {what}: {json.dumps(document)[:300]}")
    return items[0]


trade = first(get("/v1/trades"), "trades", "trade")
cycle = next(
    (cycle for cycle in get("/v1/cycles").get("cycles", []) if cycle.get("settled") or cycle.get("status") != "open"),
    None,
) or first(get("/v1/cycles"), "cycles", "cycle")
proposal = first(get("/v1/governance"), "proposals", "governance proposal")
member_id = next(m["id"] for m in get("/v1/members")["members"] if m["name"] == member)
order = first(get(f"/v1/members/{member_id}/orders"), "orders", "resting order")

parameters = {
    "GET /v1/transactions/{id}": {"id": tx_id},
    "GET /v1/orders/{id}": {"id": order["id"]},
    "GET /v1/trades/{id}/certificate": {"id": trade["id"]},
    "GET /v1/cycles/{n}/certificate": {"n": cycle.get("n", cycle.get("number", cycle.get("id")))},
    "GET /v1/governance/{id}": {"id": proposal["id"]},
    # The pair the seeded orders trade (an unknown symbol is a 404).
    "GET /v1/book/{base}/{quote}": {"base": "ETH", "quote": "JPY"},
    "GET /v1/compliance/{date}": {"date": day},
    "GET /v1/compliance/{date}/statements/{member}": {"date": day, "member": member},
}


def toml_value(value) -> str:
    return json.dumps(value)  # a JSON string or integer is the same in TOML


with open(out, "w") as config:
    config.write("# Written by scripts/schemathesis/config.py for one run.\n")
    config.write("[warnings]\nfail-on = true\n")
    for name, values in parameters.items():
        inline = ", ".join(f"{key} = {toml_value(value)}" for key, value in values.items())
        config.write(f"\n[[operations]]\ninclude-name = {toml_value(name)}\nparameters = {{ {inline} }}\n")
print(json.dumps(parameters))
