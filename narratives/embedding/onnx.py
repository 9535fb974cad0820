"""The fast CPU backend: the encoder exported to ONNX, fused and quantised to int8.

A sentence-transformers folder made of a Transformer, a mean (or CLS) Pooling and an
optional Normalize module is exported once, on this machine and without a network, into
``<cache>/models/<name>-onnx-int8-o<version>/``:

1. ``torch.onnx.export`` of the transformer with its pooling and normalisation (eager
   attention, so that ONNX Runtime's transformer optimiser recognises and fuses it);
2. ``onnxruntime.transformers.optimizer`` fuses attention, GELU and layer norms;
3. ``onnxruntime.quantization.quantize_dynamic`` stores the weights as int8, per output
   channel (per-tensor scales lose too much: cosine 0.978 to torch on long news posts).

optimum would do the same but pins transformers below 4.58. The folder holds the model,
the tokenizer and a manifest written last, with checksums and the lowest cosine to the
torch embeddings on the multilingual probe texts, which must reach
:data:`MIN_PROBE_COSINE`; a folder whose manifest does not match is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np

from narratives.embedding.model_cache import build_once, cache_dir
from narratives.errors import ModelError

logger = logging.getLogger(__name__)

#: Bump when the export changes, so that old folders are rebuilt.
EXPORT_VERSION = 1
#: Lowest cosine to the torch embeddings the int8 model must reach on the probe texts.
MIN_PROBE_COSINE = 0.98
INSTALL_HINT = "pip install onnxruntime onnx"


def _require() -> None:
    """ONNX and ONNX Runtime must be installed (found, not imported: importing onnx takes
    most of a second, and only an export needs it)."""
    from importlib.util import find_spec

    if find_spec("onnx") is None or find_spec("onnxruntime") is None:
        raise ModelError(f"the onnx backend needs ONNX Runtime: {INSTALL_HINT}")


def onnx_dir(st_folder: Path, exact_name: bool = False) -> Path:
    """Where the export of ``st_folder`` lives. Its name says which folder it came from:
    the folder's own name where that names its content exactly (``exact_name``, the
    default model's, which carries its source and converter versions), else the name
    and a digest of the folder's path and its files' sizes and times, so that two
    folders called ``model`` are not taken for one another and a changed folder is
    exported again."""
    name = st_folder.name
    if not exact_name:
        digest = hashlib.sha256(str(st_folder.resolve()).encode())
        for path in sorted(st_folder.rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(
                    f"{path.relative_to(st_folder)}:{stat.st_size}:{stat.st_mtime_ns}".encode()
                )
        name = f"{name}-{digest.hexdigest()[:12]}"
    return cache_dir() / "models" / f"{name}-onnx-int8-o{EXPORT_VERSION}"


def _pooling(st_folder: Path) -> tuple[str, bool, dict[str, Any]]:
    """(pooling mode, normalise?, settings) of a sentence-transformers folder, or ModelError."""
    modules_file = st_folder / "modules.json"
    if not modules_file.is_file():
        raise ModelError(f"{st_folder} is not a sentence-transformers folder (no modules.json)")
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
        raise ModelError(
            f"the onnx backend exports Transformer + Pooling (+ Normalize) models; "
            f"{st_folder.name} has {', '.join(kinds)}: use --backend torch"
        )
    pool = json.loads((st_folder / modules[1]["path"] / "config.json").read_text("utf-8"))
    # sentence-transformers 6 writes "pooling_mode"; earlier versions one flag per mode
    mode = pool.get("pooling_mode") or (
        "mean"
        if pool.get("pooling_mode_mean_tokens")
        else "cls"
        if pool.get("pooling_mode_cls_token")
        else None
    )
    if mode not in ("mean", "cls") or pool.get("include_prompt") is False:
        raise ModelError(
            f"{st_folder.name}: only mean or CLS pooling over all tokens export to onnx; "
            "use --backend torch"
        )
    settings = json.loads((st_folder / "sentence_bert_config.json").read_text("utf-8"))
    st_config = st_folder / "config_sentence_transformers.json"
    if st_config.is_file():
        settings.update(json.loads(st_config.read_text("utf-8")))
    if not settings.get("max_seq_length"):
        tokenizer_config = json.loads((st_folder / "tokenizer_config.json").read_text("utf-8"))
        settings["max_seq_length"] = min(int(tokenizer_config.get("model_max_length", 512)), 512)
    settings["dim"] = int(pool.get("embedding_dimension") or pool["word_embedding_dimension"])
    return mode, kinds[2:] == ["Normalize"], settings


def _export(st_folder: Path, out: Path) -> None:
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel

    mode, normalise, _ = _pooling(st_folder)
    model = AutoModel.from_pretrained(
        str(st_folder), use_safetensors=True, attn_implementation="eager"
    ).eval()

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.body(input_ids=input_ids, attention_mask=attention_mask)[0]
            if mode == "cls":
                vector = hidden[:, 0]
            else:
                weight = attention_mask.unsqueeze(-1).to(hidden.dtype)
                vector = (hidden * weight).sum(1) / weight.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(vector, dim=-1) if normalise else vector

    ids = torch.tensor([[0, 10, 11, 2], [0, 12, 2, 1]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    raw = out / "raw.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Encoder(),
            (ids, mask),
            str(raw),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "embedding": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    fused = out / "fused.onnx"
    optimize_model(
        str(raw),
        model_type="bert",
        num_heads=model.config.num_attention_heads,
        hidden_size=model.config.hidden_size,
        opt_level=1,
    ).save_model_to_file(str(fused))
    raw.unlink()
    quiet = logging.getLogger()  # the quantiser logs its advice on the root logger
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(fused),
            str(out / "model.onnx"),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        quiet.setLevel(level)
    fused.unlink()
    for extra in out.iterdir():  # external-data files the optimiser leaves behind
        if extra.name != "model.onnx":
            extra.unlink()
    shutil.copy2(st_folder / "tokenizer.json", out / "tokenizer.json")


def ensure_onnx_model(
    st_folder: Path,
    probe_texts: Sequence[str],
    rebuild: bool = False,
    prepare: Callable[[], Any] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """The verified int8 ONNX folder of ``st_folder`` and its manifest, exported on first
    use (about 30 s). ``prepare`` builds ``st_folder`` when needed (the default model,
    whose folder name says exactly what it holds: see :func:`onnx_dir`)."""
    _require()
    folder = onnx_dir(st_folder, exact_name=prepare is not None)

    def build(tmp: Path) -> dict[str, Any]:
        if prepare is not None:
            prepare()
        _export(st_folder, tmp)
        _, _, settings = _pooling(st_folder)
        prompt = settings.get("prompts", {}).get(settings.get("default_prompt_name") or "", "")
        cosines = probe_cosines(st_folder, tmp, settings, [prompt + t for t in probe_texts])
        if float(cosines.min()) < MIN_PROBE_COSINE:
            raise ModelError(
                f"the int8 ONNX export of {st_folder.name} strays from its torch "
                f"embeddings (lowest cosine {cosines.min():.4f} < {MIN_PROBE_COSINE}); "
                "use --backend torch"
            )
        return {
            "source": st_folder.name,
            "export_version": EXPORT_VERSION,
            "settings": settings,
            "parity": {"probe_texts": len(cosines), "min_cosine": float(cosines.min())},
        }

    return folder, build_once(folder, build, f"int8 ONNX export of {st_folder.name}", rebuild)


def probe_cosines(
    st_folder: Path, onnx_folder: Path, settings: dict[str, Any], texts: list[str]
) -> np.ndarray:
    """Cosine between the torch and the ONNX embedding of each (prompted) text."""
    from sentence_transformers import SentenceTransformer

    torch_vectors = SentenceTransformer(
        str(st_folder), device="cpu", local_files_only=True, trust_remote_code=False
    ).encode(texts, convert_to_numpy=True, normalize_embeddings=True)
    ours = OnnxEncoder(onnx_folder, int(settings.get("max_seq_length") or 512)).encode(texts)
    ours = ours / np.linalg.norm(ours, axis=1, keepdims=True)
    return np.einsum("ij,ij->i", torch_vectors, ours)


def default_threads() -> int:
    """The CPUs this process may run on (ONNX Runtime would count the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


class OnnxEncoder:
    """Run an exported folder: one text per call, on ``threads`` calls at once.

    int8 activations are quantised per call: batched with others, a text's vector would
    move (cosine 0.995 at worst on the probe texts) with its batchmates, and a cached
    vector would depend on the dump it was first seen in. One text per call has no
    padding either, and with one single-threaded call per CPU it is as fast as batching
    by length (measured on the sample's short posts and on long state-media posts; see
    benchmarks/bench_throughput.py). A text's vector depends on the text alone.
    """

    def __init__(self, folder: Path, max_seq_length: int, threads: int | None = None) -> None:
        self.folder = folder
        self.threads = threads or default_threads()
        self.max_seq_length = max_seq_length

    @cached_property
    def tokenizer(self) -> Any:
        """The tokenizer, read on first use (most of a second for XLM-R's; a run served
        from the text cache never needs it)."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tokenizer.enable_truncation(self.max_seq_length)
        tokenizer.no_padding()
        return tokenizer

    @cached_property
    def session(self) -> Any:
        """The ONNX Runtime session, made on first use (a re-run served from the cache
        never needs it). Each call runs on one thread; calls run side by side."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return ort.InferenceSession(
            str(self.folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    @staticmethod
    def _one(session: Any, ids: list[int]) -> np.ndarray:
        feed = {
            "input_ids": np.array([ids], dtype=np.int64),
            "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
        }
        return session.run(None, feed)[0][0]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)
        ids = [e.ids for e in encodings]
        run = partial(self._one, self.session)  # the session is made before any thread
        if self.threads == 1 or len(ids) == 1:
            vectors = [run(x) for x in ids]
        else:
            with ThreadPoolExecutor(self.threads) as pool:  # ONNX Runtime frees the GIL
                vectors = list(pool.map(run, ids))
        return np.stack(vectors).astype(np.float32, copy=False)
