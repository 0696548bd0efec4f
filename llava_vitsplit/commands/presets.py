"""`llava-vitsplit presets`: list the named ViT-Split settings (paper Table 10)."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("presets", help="list the named ViT-Split presets (paper Table 10, or the authors' release)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llava_vitsplit.split import list_presets

    rows = []
    for preset in list_presets():
        config = preset.split_config()
        rows.append(
            {
                "name": preset.name,
                "task": preset.task,
                "dataset": preset.dataset,
                "backbone": preset.backbone,
                "resolution": "x".join(map(str, preset.image_size)),
                "K_t": config.num_task_layers,
                "K_p": config.num_prior_layers,
                "b": config.prior_start_layer if config.selection == "uniform" else None,
                "prior_blocks": list(config.prior_block_ids),
                "source": preset.source,
                "note": preset.note,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    columns = ["name", "task", "dataset", "backbone", "resolution", "K_t", "K_p", "b", "prior_blocks"]
    table = [[("-" if row[c] is None else str(row[c])) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))
    print("\nwhere the numbers come from ('source' in --json):")
    for row in rows:
        print(f"  {row['name']}: {row['source']}")
    for row in rows:
        if row["note"]:
            print(f"\n{row['name']}: {row['note']}")
    return 0
