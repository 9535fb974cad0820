"""The posts the benchmarks run on, and how they hand them to `narratives.score`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
FB = (
    ROOT.parent
    / "shared/data/external/cn-state-media-facebook-2022/fb_posts_cn_state_media_2022.csv"
)
FB_COLUMNS = {"post_id": "ID", "page_id": "AUTHOR_ID", "text": "CONTENT", "created_at": "TIME"}


def benchmark_posts() -> tuple[pd.DataFrame, str]:
    """The scored-ok posts of the Chinese state-media Facebook pages in ../shared, or of
    the bundled sample when that is absent, and the file's name."""
    import narratives

    if FB.exists():
        source, columns, tz = FB, FB_COLUMNS, "Asia/Shanghai"
    else:
        source, columns, tz = ROOT / "samples/posts.jsonl", None, None
    posts = narratives.read_posts(source, columns, tz=tz).posts
    return posts[posts["status"] == "ok"], source.name


def write_jsonl(posts: pd.DataFrame, path: Path) -> Path:
    """``posts`` as a JSONL file that `narratives score` reads with its default columns."""
    with path.open("w", encoding="utf-8") as f:
        for row in posts.itertuples():
            record = {
                "post_id": row.post_id,
                "page_id": row.page_id,
                "text": row.text,
                "created_at": row.created_at.isoformat(),
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path
