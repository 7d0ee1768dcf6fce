#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Curated trajectories and eval cases for the default capabilities.

The distillation pipeline (aikctl distill, docs/distillation.md) trains a
capability's adapter on teacher trajectories. No larger model exists on a
machine without a network, so for the shipped adapters the teacher is the
reference dataset the base model was trained from: WordNet 3.0's most
frequent sense of each word, written in the capability's canonical format
(FORMATS.md). Each trajectory's "source" says so ("curated:wordnet-3.0").

For each single-word lemma with a sense-tagged count (cntlist) of at least
one, the part of speech whose index line has the most tagged senses is
chosen, and its first (most frequent) synset gives:
  lexicon.define   completion "{pos}) means {d}."  after  The word "{w}" (
  lexicon.synonyms completion " {list}."           after  Synonyms of "{w}":
Words are split deterministically (SHA-256 of the word) into training
trajectories and held-out eval cases, so an eval case never trains:
  lexicon.define   expected "({pos}) " contained in the answer (the right
                   part of speech, in the capability's answer format)
  lexicon.synonyms expected: the first synonym contained in the answer

Usage: build_trajectories.py OUTDIR [--wordnet-dir DIR] [--eval-words N]
"""
import argparse
import hashlib
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_corpus as bc  # noqa: E402

WORD_RE = re.compile(r"[a-z]{3,20}")
INDEX_FILES = (("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r"))
POS_ORDER = "nvar"
SOURCE = "curated:wordnet-3.0"


def read_index(wndir):
    """{word: [(pos, tagsense_cnt, first synset offset)]} for single words."""
    out = {}
    for name, fpos in INDEX_FILES:
        with open(os.path.join(wndir, "index." + name), encoding="utf-8") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                t = line.split()
                if len(t) < 6 or not WORD_RE.fullmatch(t[0]):
                    continue
                synset_cnt, p_cnt = int(t[2]), int(t[3])
                i = 4 + p_cnt
                tagged = int(t[i + 1])
                offsets = t[i + 2:]
                if len(offsets) != synset_cnt or not offsets:
                    continue
                out.setdefault(t[0], []).append((fpos, tagged, int(offsets[0])))
    return out


def held_out(word, every):
    return int(hashlib.sha256(word.encode()).hexdigest()[:8], 16) % every == 0


def build(args):
    stats = {}
    synsets = bc.load_synsets(args.wordnet_dir, stats)
    index = read_index(args.wordnet_dir)
    define_tr, syn_tr, define_cases, syn_cases = [], [], [], []
    for word in sorted(index):
        senses = [s for s in index[word] if s[1] >= 1]
        if not senses:
            continue
        fpos, _, off = max(senses, key=lambda s: (s[1], -POS_ORDER.index(s[0])))
        s = synsets.get((fpos, off))
        if s is None:
            continue
        pos = bc.POS_NAME[s["type"]]
        defs, _, _ = bc.split_gloss(s["gloss"])
        d = bc.clean_definition(defs)
        others, seen = [], {word}
        for w in s["words"]:
            if w.lower() not in seen:
                seen.add(w.lower())
                others.append(w)
        others = others[:6]
        test = held_out(word, args.every)
        if d:
            if test:
                define_cases.append({"input": word, "expected": "(%s) " % pos, "match": "contains",
                                     "intent": "lexicon.define"})
            else:
                define_tr.append({"capability": "lexicon.define", "input": word,
                                  "output": "%s) means %s." % (pos, d), "source": SOURCE})
        if others:
            if test:
                syn_cases.append({"input": word, "expected": others[0], "match": "contains",
                                  "intent": "lexicon.synonyms"})
            else:
                syn_tr.append({"capability": "lexicon.synonyms", "input": word,
                               "output": " %s." % ", ".join(others), "source": SOURCE})
    os.makedirs(args.outdir, exist_ok=True)
    files = {"lexicon-define.trajectories.jsonl": define_tr, "lexicon-synonyms.trajectories.jsonl": syn_tr,
             "lexicon-define.cases.jsonl": define_cases[:args.eval_words],
             "lexicon-synonyms.cases.jsonl": syn_cases[:args.eval_words]}
    for name, rows in files.items():
        data = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)
        bc.write_atomic(os.path.join(args.outdir, name), data.encode("utf-8"))
        print("%-40s %6d lines" % (name, len(rows)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("outdir")
    p.add_argument("--wordnet-dir", default="/usr/share/wordnet")
    p.add_argument("--every", type=int, default=40, help="hold out one word in EVERY for eval (default 40)")
    p.add_argument("--eval-words", type=int, default=60, help="eval cases kept per capability (default 60)")
    build(p.parse_args(argv))


if __name__ == "__main__":
    main()
