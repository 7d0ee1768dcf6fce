#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Build the training corpus of AIKernel's default model from WordNet 3.0.

The input is the WordNet database as installed by Debian's wordnet-base
package (/usr/share/wordnet: data.{noun,verb,adj,adv} and *.exc).  The output
directory receives train.txt, valid.txt, test.txt and manifest.json.  The text
formats are specified in FORMATS.md next to this file; the runtime builds the
prompts of lexicon.define, lexicon.synonyms and lexicon.example on them, so a
change of a template here is an ABI change there (bump FORMAT_VERSION).

Properties the rest of the project relies on:
  * Deterministic: the same input files and options give byte-identical
    output on every run and machine.  Nothing depends on Python's hash(),
    dict order of unsorted sources, the clock, the locale or the random
    module; every "random" choice is a SHA-256 of a stable key.
  * Stable splits: a document's split is a function of its synset's
    (part of speech, offset) only, so adding or removing data never moves a
    document between train/valid/test, and all documents of one synset (they
    share the gloss) land in the same split, which keeps valid/test honest.
  * Robust: the data files are read as untrusted bytes.  A malformed line is
    skipped and counted by reason (see manifest.json "skipped"); the builder
    never raises on bad content.  Missing or unreadable files are reported
    with the path and exit status 1.

Python 3 standard library only (Debian 12: python3 3.11).
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys

BUILDER_VERSION = 1
FORMAT_VERSION = 1

# Limits on untrusted input: WordNet 3.0's longest data line is ~11 KB and
# its largest file ~15 MB; these leave ample room while bounding memory.
MAX_LINE_BYTES = 64 * 1024
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_SYNSETS = 2 * 1000 * 1000
MAX_WORDS_PER_SYNSET = 255       # w_cnt is two hex digits
MAX_POINTERS_PER_SYNSET = 999    # p_cnt is three decimal digits
MAX_EXC_ENTRIES = 1000 * 1000

DATA_FILES = (("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r"))
EXC_FILES = ("noun.exc", "verb.exc", "adj.exc", "adv.exc")
VERB_SENTENCE_FILES = ("sents.vrb", "sentidx.vrb")
MAX_VERB_SENTENCES = 10000
MAX_VERB_SENTENCE_INDEX = 1000 * 1000

POS_NAME = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective", "r": "adverb"}
POS_ARTICLE = {"n": "a noun", "v": "a verb", "a": "an adjective", "s": "an adjective", "r": "an adverb"}
# The data file a synset type lives in ('s' satellites are in data.adj).
POS_FILE = {"n": "n", "v": "v", "a": "a", "s": "a", "r": "r"}

# Per-document caps (keep one prolific synset from dominating the corpus).
MAX_EXAMPLES_PER_DOC = 2
MAX_RELATED_PER_DOC = 2
MAX_SYNONYMS = 6
MAX_DEFINITION_CHARS = 400
MAX_EXAMPLE_CHARS = 300

# ---------------------------------------------------------------------------
# Templates.  Index 0 of each kind is the canonical format that the runtime's
# capability prompts use (FORMATS.md); it gets half the weight so the model
# learns it best, the variants teach that the same fact has several
# phrasings.  Append-only: reordering changes every document.
# ---------------------------------------------------------------------------
TEMPLATES = {
    "define": (
        (6, 'The word "{w}" ({pos}) means {d}.'),
        (2, 'Define "{w}": {d}.'),
        (2, '"{w}" is {apos} meaning {d}.'),
        (2, '{w} ({pos}): {d}.'),
    ),
    "example": (
        (6, 'Use the word "{w}" in a sentence: "{s}"'),
        (2, '{w}, as in: "{s}"'),
        (2, 'Here is "{w}" used in a sentence: "{s}"'),
        (2, 'An example with "{w}": "{s}"'),
    ),
    "synonyms": (
        (6, 'Synonyms of "{w}": {list}.'),
        (3, 'Another word for "{w}" is "{first}".'),
        (3, 'Words with the same meaning as "{w}": {list}.'),
    ),
    "related": ((1, 'A related example: "{s}"'),),
    "kind_of": ((1, '"{w}" is a kind of {x}.'),),
    "way_to": ((1, 'To {w} is one way to {x}.'),),
    "instance_of": ((1, '"{w}" is an instance of {x}.'),),
    "similar_to": ((1, '"{w}" is similar to "{x}".'),),
    "opposite": ((1, 'The opposite of "{w}" is "{x}".'),),
}

# Order of the lines inside a document before the rotation (see make_doc).
LINE_ORDER = ("define", "example", "related", "kind_of", "way_to", "instance_of",
              "similar_to", "opposite", "synonyms")


class Malformed(Exception):
    """A data line failed a check; the message is the reason counted."""


def sha256_int(text):
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def pick_weighted(key, table):
    """Deterministic weighted choice among (weight, value) rows by SHA-256 of key."""
    total = sum(w for w, _ in table)
    r = sha256_int(key) % total
    for i, (w, value) in enumerate(table):
        if r < w:
            return i, value
        r -= w
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------
# Reading untrusted files
# ---------------------------------------------------------------------------

def read_lines(path, stats, what):
    """Yield (byte_offset, text) for each line of path.

    Lines longer than MAX_LINE_BYTES are skipped whole (never split, which
    would make their tail look like a new line) and lines that are not UTF-8
    are skipped; both are counted in stats["skipped"]."""
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise OSError("%s: file is %d bytes, limit %d" % (path, size, MAX_FILE_BYTES))
    pos = 0
    with open(path, "rb") as f:
        while True:
            raw = f.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            start = pos
            pos += len(raw)
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                # Swallow the rest of the over-long line.
                while True:
                    more = f.readline(MAX_LINE_BYTES)
                    pos += len(more)
                    if not more or more.endswith(b"\n"):
                        break
                count(stats, "skipped", "%s: line longer than %d bytes" % (what, MAX_LINE_BYTES))
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                count(stats, "skipped", "%s: line is not UTF-8" % what)
                continue
            yield start, text.rstrip("\r\n")


def count(stats, group, key, n=1):
    g = stats.setdefault(group, {})
    g[key] = g.get(key, 0) + n


def parse_hex(tok, digits, field):
    if len(tok) != digits or not re.fullmatch(r"[0-9a-fA-F]+", tok):
        raise Malformed("%s is not %d hex digits" % (field, digits))
    return int(tok, 16)


def parse_dec(tok, digits, field):
    if len(tok) != digits or not tok.isascii() or not tok.isdigit():
        raise Malformed("%s is not %d decimal digits" % (field, digits))
    return int(tok, 10)


# WordNet 3.0 lemmas use only these characters.  Keeping ',' and '"' out is
# what lets FORMATS.md promise that a synonym list splits on ", " and that a
# quoted word ends at the next '"'.
LEMMA_RE = re.compile(r"[A-Za-z0-9_.'/-]+")
ADJ_MARKER_RE = re.compile(r"\((?:a|p|ip)\)$")


def parse_synset(line, file_pos, byte_pos):
    """Parse one data.* line.  Format (wndb(5)):
    offset lex_filenum ss_type w_cnt {word lex_id} p_cnt {ptr} [frames] | gloss
    Returns a dict or raises Malformed naming the field and the check."""
    bar = line.find(" | ")
    if bar < 0:
        raise Malformed("no ' | ' gloss separator")
    head, gloss = line[:bar], line[bar + 3:]
    toks = head.split()
    n = len(toks)

    def need(i, field):
        if i >= n:
            raise Malformed("line ends before %s" % field)
        return toks[i]

    offset = parse_dec(need(0, "synset_offset"), 8, "synset_offset")
    lex_file = parse_dec(need(1, "lex_filenum"), 2, "lex_filenum")
    ss_type = need(2, "ss_type")
    if ss_type not in POS_FILE:
        raise Malformed("ss_type is not one of n v a s r")
    if POS_FILE[ss_type] != file_pos:
        raise Malformed("ss_type does not belong in this data file")
    w_cnt = parse_hex(need(3, "w_cnt"), 2, "w_cnt")
    if w_cnt == 0:
        raise Malformed("w_cnt is zero")
    words, lex_ids = [], []
    i = 4
    for _ in range(w_cnt):
        word = need(i, "word")
        lex_id = parse_hex(need(i + 1, "lex_id"), 1, "lex_id")
        i += 2
        if ss_type in "as":
            word = ADJ_MARKER_RE.sub("", word)
        if not word or not LEMMA_RE.fullmatch(word):
            raise Malformed("word has characters outside the lemma alphabet")
        words.append(word.replace("_", " "))
        lex_ids.append(lex_id)
    p_cnt = parse_dec(need(i, "p_cnt"), 3, "p_cnt")
    i += 1
    ptrs = []
    for _ in range(p_cnt):
        sym = need(i, "pointer_symbol")
        t_off = parse_dec(need(i + 1, "pointer offset"), 8, "pointer offset")
        t_pos = need(i + 2, "pointer pos")
        if t_pos not in POS_FILE:
            raise Malformed("pointer pos is not one of n v a s r")
        st = need(i + 3, "pointer source/target")
        if len(st) != 4:
            raise Malformed("pointer source/target is not 4 hex digits")
        src = parse_hex(st[:2], 2, "pointer source")
        tgt = parse_hex(st[2:], 2, "pointer target")
        if src > w_cnt:
            raise Malformed("pointer source exceeds w_cnt")
        ptrs.append((sym, POS_FILE[t_pos], t_off, src, tgt))
        i += 4
    if ss_type == "v":
        f_cnt = parse_dec(need(i, "f_cnt"), 2, "f_cnt")
        i += 1
        for _ in range(f_cnt):
            if need(i, "frame '+'") != "+":
                raise Malformed("verb frame does not start with '+'")
            parse_dec(need(i + 1, "f_num"), 2, "f_num")
            parse_hex(need(i + 2, "w_num"), 2, "w_num")
            i += 3
    if i != n:
        raise Malformed("extra fields before the gloss")
    return {"offset": offset, "type": ss_type, "words": words, "ptrs": ptrs,
            "lex_file": lex_file, "lex_ids": lex_ids,
            "gloss": gloss.strip(), "offset_ok": offset == byte_pos}


def load_synsets(wndir, stats):
    """Return {(file_pos, offset): synset} for all four data files."""
    synsets = {}
    for name, fpos in DATA_FILES:
        what = "data." + name
        path = os.path.join(wndir, what)
        n_ok = 0
        for byte_pos, line in read_lines(path, stats, what):
            if line.startswith("  ") or not line.strip():
                continue   # licence header (wndb(5): lines start with two spaces)
            try:
                s = parse_synset(line, fpos, byte_pos)
            except Malformed as e:
                count(stats, "skipped", "%s: %s" % (what, e))
                continue
            key = (fpos, s["offset"])
            if key in synsets:
                count(stats, "skipped", "%s: duplicate synset_offset" % what)
                continue
            if len(synsets) >= MAX_SYNSETS:
                count(stats, "skipped", "%s: more than %d synsets" % (what, MAX_SYNSETS))
                continue
            if not s.pop("offset_ok"):
                # Offsets are only keys to us, but a mismatch says the file was
                # edited by hand; worth knowing, not worth dropping the line.
                count(stats, "warnings", "%s: synset_offset is not the line's byte offset" % what)
            synsets[key] = s
            n_ok += 1
        stats.setdefault("synsets", {})[what] = n_ok
    return synsets


def load_exceptions(wndir, stats):
    """From the *.exc files (optional): (inflected form -> set of base forms,
    verb base form -> sorted list of its irregular inflected forms)."""
    exc = {}
    verb_forms = {}
    n = 0
    for what in EXC_FILES:
        path = os.path.join(wndir, what)
        if not os.path.exists(path):
            count(stats, "warnings", "%s: missing, inflections are matched by rule only" % what)
            continue
        for _, line in read_lines(path, stats, what):
            toks = line.split()
            if len(toks) < 2 or not all(LEMMA_RE.fullmatch(t) for t in toks):
                count(stats, "skipped", "%s: not 'inflected base...'" % what)
                continue
            if n >= MAX_EXC_ENTRIES:
                count(stats, "skipped", "%s: more than %d entries" % (what, MAX_EXC_ENTRIES))
                continue
            n += 1
            infl = toks[0].replace("_", " ").lower()
            for base in toks[1:]:
                b = base.replace("_", " ").lower()
                exc.setdefault(infl, set()).add(b)
                if what == "verb.exc":
                    verb_forms.setdefault(b, set()).add(infl)
    return exc, {b: sorted(f) for b, f in verb_forms.items()}


def load_verb_sentences(wndir, stats):
    """sense key -> list of WordNet's example sentence frames for that verb
    sense (sents.vrb: "N text with %s"; sentidx.vrb: "sense_key N,N,...").
    Both files are optional: without them verbs only get gloss examples."""
    paths = [os.path.join(wndir, f) for f in VERB_SENTENCE_FILES]
    if not all(os.path.exists(p) for p in paths):
        count(stats, "warnings", "sents.vrb/sentidx.vrb: missing, no verb sentence frames")
        return {}
    frames = {}
    for _, line in read_lines(paths[0], stats, "sents.vrb"):
        num, _, text = line.partition(" ")
        text = " ".join(text.split()).replace('"', "'")
        if (not num.isascii() or not num.isdigit() or len(num) > 6 or text.count("%s") != 1
                or len(text) > MAX_EXAMPLE_CHARS or len(frames) >= MAX_VERB_SENTENCES):
            count(stats, "skipped", "sents.vrb: not 'number text-with-one-%s'")
            continue
        frames[int(num)] = text
    index = {}
    for _, line in read_lines(paths[1], stats, "sentidx.vrb"):
        toks = line.split()
        nums = toks[1].split(",") if len(toks) == 2 else []
        if (not nums or "%2:" not in toks[0] or len(index) >= MAX_VERB_SENTENCE_INDEX
                or not all(n.isascii() and n.isdigit() and len(n) <= 6 for n in nums)):
            count(stats, "skipped", "sentidx.vrb: not 'sense_key number,number...'")
            continue
        texts = [frames[int(n)] for n in nums if int(n) in frames]
        if len(texts) != len(nums):
            count(stats, "warnings", "sentidx.vrb: sentence number not in sents.vrb")
        if texts:
            index[toks[0]] = texts
    return index


def third_person(verb):
    head, sep, tail = verb.partition(" ")
    irregular = {"be": "is", "have": "has", "do": "does", "go": "goes"}
    if head in irregular:
        head = irregular[head]
    elif head.endswith(("s", "x", "z", "ch", "sh", "o")):
        head += "es"
    elif len(head) > 1 and head.endswith("y") and head[-2] not in "aeiou":
        head = head[:-1] + "ies"
    else:
        head += "s"
    return head + sep + tail


def present_participle(verb, verb_forms):
    head, sep, tail = verb.partition(" ")
    # verb.exc lists the irregular and consonant-doubling forms (running).
    ing = [f for f in verb_forms.get(head, ()) if f.endswith("ing") and " " not in f]
    if ing:
        head = ing[0]
    elif head.endswith("ie"):
        head = head[:-2] + "ying"
    elif len(head) > 2 and head.endswith("e") and not head.endswith(("ee", "oe", "ye")):
        head = head[:-1] + "ing"
    else:
        head += "ing"
    return head + sep + tail


def fill_frame(frame, verb, verb_forms):
    """Instantiate a sents.vrb frame: %sing, %ss and %s are the verb's
    participle, third person singular and base form."""
    if "%sing" in frame:
        text = frame.replace("%sing", present_participle(verb, verb_forms))
    elif "%ss" in frame:
        text = frame.replace("%ss", third_person(verb))
    else:
        text = frame.replace("%s", verb)
    return clean_example(text.strip())


# ---------------------------------------------------------------------------
# Gloss processing
# ---------------------------------------------------------------------------

def split_gloss(gloss):
    """Split a gloss at ';' outside double quotes into definition parts and
    quoted examples.  Returns (definition parts, examples, n_rejected)."""
    parts, cur, inq = [], [], False
    for ch in gloss:
        if ch == '"':
            inq = not inq
        if ch == ";" and not inq:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    defs, exs, rejected = [], [], 0
    for p in parts:
        p = " ".join(p.split())
        if not p:
            continue
        if p.startswith('"'):
            # "example text" possibly followed by an attribution
            # ("...--Shakespeare"); keep the quoted text only.
            end = p.rfind('"')
            text = p[1:end] if end > 0 else ""
            text = text.strip()
            if not text or '"' in text or len(text) > MAX_EXAMPLE_CHARS:
                rejected += 1
                continue
            exs.append(text)
        else:
            defs.append(p)
    return defs, exs, rejected


def clean_definition(parts):
    d = "; ".join(parts)
    # WordNet quotes with `...'; straight quotes read better and keep '"'
    # reserved for the corpus's own quoting of words and sentences.
    d = d.replace("`", "'").replace('"', "'")
    d = d.strip().rstrip(".;:, ").strip()
    if len(d) > MAX_DEFINITION_CHARS:
        return ""
    return d


def clean_example(text):
    text = text.replace("`", "'")
    if text[0].islower():
        text = text[0].upper() + text[1:]
    if text[-1] not in ".!?":
        text += "."
    return text


TOKEN_RE = re.compile(r"[a-z0-9]+(?:['./-][a-z0-9]+)*")

# WordNet's morphy detachment rules (all parts of speech together: we only
# ever compare the result with one known lemma, so over-generation is safe).
SUFFIX_RULES = (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"),
                ("shes", "sh"), ("men", "man"), ("ies", "y"), ("es", "e"), ("es", ""),
                ("ed", "e"), ("ed", ""), ("ied", "y"), ("ing", "e"), ("ing", ""),
                ("er", ""), ("est", ""), ("er", "e"), ("est", "e"))


def base_forms(tok, exc):
    forms = {tok}
    forms.update(exc.get(tok, ()))
    for suf, rep in SUFFIX_RULES:
        if tok.endswith(suf) and len(tok) > len(suf) + 1:
            b = tok[: len(tok) - len(suf)] + rep
            forms.add(b)
            # stopped -> stopp -> stop
            if rep == "" and len(b) >= 3 and b[-1] == b[-2] and b[-1] not in "aeiou":
                forms.add(b[:-1])
    return forms


def mentions(example_tokens, lemma_tokens, exc):
    """True if the lemma occurs in the example, each word possibly inflected."""
    k = len(lemma_tokens)
    if k == 0 or k > len(example_tokens):
        return False
    for i in range(len(example_tokens) - k + 1):
        if all(lemma_tokens[j] in base_forms(example_tokens[i + j], exc) for j in range(k)):
            return True
    return False


# ---------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------

def first_word(synsets, fpos, off):
    t = synsets.get((fpos, off))
    return t["words"][0] if t else None


def make_docs(synsets, exc, verb_forms, verb_sentences, stats):
    """Return a list of (split_key, doc_key, tier, text, tags) in no particular
    order; tags are "group/key" statistics counted for the documents kept.

    tier orders documents for --max-bytes: 0 = the first lemma of a synset
    (every gloss appears once), 1 = another lemma that is a plain lowercase
    word, 2 = any other lemma (names, multi-word terms, taxonomic variants)."""
    docs = []
    for (fpos, off) in sorted(synsets):
        s = synsets[(fpos, off)]
        st = s["type"]
        pos = POS_NAME[st]
        defs, exs, rejected = split_gloss(s["gloss"])
        if rejected:
            count(stats, "skipped", "examples with stray quotes or too long", rejected)
        d = clean_definition(defs)
        if not d:
            count(stats, "skipped", "synsets without a usable definition")
            continue
        ex_clean = [clean_example(e) for e in exs]
        ex_tokens = [TOKEN_RE.findall(e.lower()) for e in exs]

        # Lemmas of the synset, deduplicated case-insensitively, in order.
        lemmas, seen = [], set()
        for idx, w in enumerate(s["words"], 1):
            if w.lower() not in seen:
                seen.add(w.lower())
                lemmas.append((idx, w))

        matched = {}
        used = set()
        for li, (_, w) in enumerate(lemmas):
            lt = TOKEN_RE.findall(w.lower())
            matched[li] = [k for k in range(len(exs)) if mentions(ex_tokens[k], lt, exc)]
            used.update(matched[li])
        unmatched = [k for k in range(len(exs)) if k not in used]

        # Relations shared by all lemmas of the synset.
        hyper = None
        for sym, tpos, toff, src, _ in s["ptrs"]:
            if src != 0:
                continue
            if sym in ("@", "@i") and hyper is None:
                x = first_word(synsets, tpos, toff)
                if x is None:
                    count(stats, "warnings", "dangling hypernym pointer")
                    continue
                if sym == "@i":
                    hyper = ("instance_of", x)
                elif st == "v":
                    hyper = ("way_to", x)
                else:
                    hyper = ("kind_of", x)
            elif sym == "&" and st == "s" and hyper is None:
                x = first_word(synsets, tpos, toff)
                if x is not None:
                    hyper = ("similar_to", x)

        split_key = "%s%08d" % (fpos, off)
        for li, (widx, w) in enumerate(lemmas):
            doc_key = "%s:%d" % (split_key, widx)
            lines = []   # (kind, template index, text)
            tags = []    # statistics of this document, counted if it is kept

            def add(kind, **kw):
                i, tpl = pick_weighted("%s:%s:%d" % (doc_key, kind, len(lines)), TEMPLATES[kind])
                lines.append((kind, i, tpl.format(w=w, pos=pos, apos=POS_ARTICLE[st], **kw)))

            add("define", d=d)
            if matched[li]:
                tags += ["examples/from glosses"] * min(len(matched[li]), MAX_EXAMPLES_PER_DOC)
            for k in matched[li][:MAX_EXAMPLES_PER_DOC]:
                add("example", s=ex_clean[k])
            if not matched[li] and st == "v":
                sk = "%s%%2:%02d:%02d::" % (w.lower().replace(" ", "_"), s["lex_file"], s["lex_ids"][widx - 1])
                frames = verb_sentences.get(sk)
                if frames:
                    frame = frames[sha256_int(doc_key + ":frame") % len(frames)]
                    add("example", s=fill_frame(frame, w, verb_forms))
                    tags.append("examples/from sents.vrb frames")
            if li == 0:
                for k in unmatched[:MAX_RELATED_PER_DOC]:
                    add("related", s=ex_clean[k])
            # The relation is the synset's, not the word's: stating it once
            # per synset (in the first lemma's document) keeps the corpus
            # within its size budget without losing a fact.
            if li == 0 and hyper is not None and hyper[1].lower() != w.lower():
                add(hyper[0], x=hyper[1])
            for sym, tpos, toff, src, tgt in s["ptrs"]:
                if sym == "!" and src == widx:
                    t = synsets.get((tpos, toff))
                    if t is None or tgt < 1 or tgt > len(t["words"]):
                        count(stats, "warnings", "dangling antonym pointer")
                        continue
                    add("opposite", x=t["words"][tgt - 1])
                    break
            syns = [x for _, x in lemmas if x.lower() != w.lower()][:MAX_SYNONYMS]
            if syns:
                add("synonyms", list=", ".join(syns), first=syns[0])
            tier = 0 if li == 0 else 1 if re.fullmatch(r"[a-z]+(?:-[a-z]+)*", w) else 2
            text = make_doc(doc_key, lines)
            tags += ["lines_by_template/%s/%d" % (kind, i) for kind, i, _ in lines]
            docs.append((split_key, doc_key, tier, text, tags))
    return docs


def make_doc(doc_key, lines):
    """Order lines canonically, then move one kind's first line to the front.

    Every line is self-contained (it names the word), so any order is valid
    text; rotating the first line puts each canonical capability prefix at a
    document start (right after BOS) in a share of the documents, which is
    where the runtime's prompts put it."""
    lines.sort(key=lambda x: LINE_ORDER.index(x[0]))
    kinds = []
    for kind, _, _ in lines:
        if kind not in kinds and kind != "related":
            kinds.append(kind)
    lead = kinds[sha256_int(doc_key + ":lead") % len(kinds)]
    first = next(i for i, x in enumerate(lines) if x[0] == lead)
    lines.insert(0, lines.pop(first))
    return "\n".join(t for _, _, t in lines)


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

def split_of(split_key, valid_pct, test_pct):
    b = sha256_int("split:" + split_key) % 100
    if b < test_pct:
        return "test"
    if b < test_pct + valid_pct:
        return "valid"
    return "train"


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def package_version(name):
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name],
                           capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "unknown"


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build(args):
    stats = {}
    wndir = args.wordnet_dir
    synsets = load_synsets(wndir, stats)
    if not synsets:
        raise OSError("%s: no valid synsets in the data files" % wndir)
    exc, verb_forms = load_exceptions(wndir, stats)
    verb_sentences = load_verb_sentences(wndir, stats)
    docs = make_docs(synsets, exc, verb_forms, verb_sentences, stats)

    # Keyed shuffle: order by SHA-256(seed, doc_key).  Unlike random.shuffle
    # this does not depend on the number of documents, so adding a synset
    # does not reorder the others, and it is the same on every Python.
    def shuffle_key(d):
        return (hashlib.sha256(("%d:%s" % (args.seed, d[1])).encode()).digest(), d[1])

    sep = "\n\n" if args.separator == "blank" else "\n<|endoftext|>\n"
    # --max-bytes keeps whole documents, lowest tier first, in shuffled order
    # within a tier: a cap removes secondary lemmas before any gloss is lost.
    keep = set()
    total = 0
    dropped = 0
    dropped_by_tier = {}
    for d in sorted(docs, key=lambda d: (d[2], shuffle_key(d))):
        cost = len(d[3].encode("utf-8")) + len(sep)
        if args.max_bytes and total + cost > args.max_bytes:
            dropped += 1
            dropped_by_tier[str(d[2])] = dropped_by_tier.get(str(d[2]), 0) + 1
            continue
        total += cost
        keep.add(d[1])
    docs.sort(key=shuffle_key)
    out = {"train": [], "valid": [], "test": []}
    for split_key, doc_key, _, text, tags in docs:
        if doc_key in keep:
            for t in tags:
                group, _, key = t.partition("/")
                count(stats, group, key)
            out[split_of(split_key, args.valid_percent, args.test_percent)].append(text)

    os.makedirs(args.outdir, exist_ok=True)
    splits = {}
    for name in ("train", "valid", "test"):
        body = "".join(t + sep for t in out[name]).encode("utf-8")
        path = os.path.join(args.outdir, name + ".txt")
        write_atomic(path, body)
        splits[name] = {
            "file": name + ".txt",
            "documents": len(out[name]),
            "lines": sum(t.count("\n") + 1 for t in out[name]),
            "bytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }

    inputs = {}
    for name in [("data." + n) for n, _ in DATA_FILES] + list(EXC_FILES) + list(VERB_SENTENCE_FILES):
        p = os.path.join(wndir, name)
        if os.path.exists(p):
            inputs[name] = {"bytes": os.path.getsize(p), "sha256": file_sha256(p)}

    manifest = {
        "builder": "models/wordnet/build_corpus.py",
        "builder_version": BUILDER_VERSION,
        "format_version": FORMAT_VERSION,
        "source": {
            "package": "wordnet-base",
            "version": args.source_version or package_version("wordnet-base"),
            "upstream": "WordNet 3.0, Princeton University (see LICENSE-WORDNET.txt)",
            "files": inputs,
        },
        "options": {
            "seed": args.seed,
            "valid_percent": args.valid_percent,
            "test_percent": args.test_percent,
            "max_bytes": args.max_bytes,
            "separator": args.separator,
        },
        "splits": splits,
        "total": {
            "documents": sum(s["documents"] for s in splits.values()),
            "lines": sum(s["lines"] for s in splits.values()),
            "bytes": sum(s["bytes"] for s in splits.values()),
            "documents_dropped_by_max_bytes": dropped,
            "documents_dropped_by_tier": dropped_by_tier,
        },
        "synsets": stats.get("synsets", {}),
        "lines_by_template": dict(sorted(stats.get("lines_by_template", {}).items())),
        "examples": dict(sorted(stats.get("examples", {}).items())),
        "skipped": dict(sorted(stats.get("skipped", {}).items())),
        "warnings": dict(sorted(stats.get("warnings", {}).items())),
    }
    write_atomic(os.path.join(args.outdir, "manifest.json"),
                 (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return manifest


def parse_args(argv):
    p = argparse.ArgumentParser(description="Build AIKernel's WordNet training corpus.")
    p.add_argument("outdir", help="output directory (created if missing)")
    p.add_argument("--wordnet-dir", default="/usr/share/wordnet",
                   help="WordNet database directory (default: %(default)s)")
    p.add_argument("--seed", type=int, default=20061206,
                   help="shuffle seed (default: %(default)s)")
    p.add_argument("--max-bytes", type=int, default=30000000,
                   help="cap the total output size in bytes, 0 = no cap (default: %(default)s); "
                        "whole documents are dropped, secondary lemmas first")
    p.add_argument("--valid-percent", type=int, default=1, help="default: %(default)s")
    p.add_argument("--test-percent", type=int, default=1, help="default: %(default)s")
    p.add_argument("--separator", choices=("blank", "eot"), default="blank",
                   help="document separator: an empty line (default) or a '<|endoftext|>' line")
    p.add_argument("--source-version", default=None,
                   help="record this package version instead of asking dpkg-query (tests)")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    a = p.parse_args(argv)
    if a.max_bytes < 0:
        p.error("--max-bytes must be >= 0")
    for name in ("valid_percent", "test_percent"):
        if not 0 <= getattr(a, name) <= 50:
            p.error("--%s must be within 0..50" % name.replace("_", "-"))
    return a


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        m = build(args)
    except OSError as e:
        print("build_corpus: %s" % e, file=sys.stderr)
        return 1
    if not args.quiet:
        t = m["total"]
        print("build_corpus: %d documents, %d lines, %d bytes -> %s" %
              (t["documents"], t["lines"], t["bytes"], args.outdir))
        for name, s in m["splits"].items():
            print("  %-5s %8d documents %9d lines %10d bytes  sha256 %s" %
                  (name, s["documents"], s["lines"], s["bytes"], s["sha256"]))
        skipped = sum(m["skipped"].values())
        if skipped:
            print("  skipped %d malformed items (see manifest.json)" % skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
