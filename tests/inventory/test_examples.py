"""The documented examples load, and the published schema is the one the models produce."""

import json
from pathlib import Path

from fleet.inventory import InventoryFile, load_inventory

INVENTORIES = Path(__file__).parents[2] / "inventories"


def test_examples_load():
    inventory = load_inventory([INVENTORIES / "examples"])
    assert len(inventory.clusters) == 7
    assert {s.spec.type for s in inventory.sources} == {"eks", "kubeconfig", "api"}
    assert {c.auth.type for c in inventory.clusters if c.auth} == {"eks", "gke", "oauth"}


def test_published_schema_is_current():
    published = json.loads((INVENTORIES / "inventory.schema.json").read_text())
    current = InventoryFile.model_json_schema(by_alias=True)
    published.pop("$schema")
    published.pop("title")
    current.pop("title")
    assert published == current, "run: fleet inventory schema > inventories/inventory.schema.json"
