#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Unit tests of build_corpus.py on a small synthetic WordNet (seconds).

Run: python3 models/wordnet/test_build_corpus.py
Set AIK_CORPUS_REAL=1 to also build the real corpus from /usr/share/wordnet
twice and compare the outputs byte for byte (about a minute)."""

import contextlib
import hashlib
import io
import json
import os
import random
import re
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
import build_corpus as bc  # noqa: E402

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n"

NOUN = [
    "00001000 05 n 02 dog 0 domestic_dog 0 001 @ 00002000 n 0000 | a member of the genus Canis; "
    "\"the dog barked all night\"  ",
    "00002000 05 n 01 canine 0 000 | any of various fissiped mammals  ",
    "00003000 18 n 01 Rex 0 001 @i 00001000 n 0000 | a famous dog; \"`Rex' was here\"--Author  ",
]
VERB = [
    "00004000 38 v 02 run 0 scat 0 001 @ 00004100 v 0000 01 + 02 00 | move fast by using one's feet; "
    "\"he ran to the store\"  ",
    "00004100 38 v 01 travel 0 000 01 + 01 00 | change location  ",
]
ADJ = [
    "00005000 00 a 01 able 0 001 ! 00005100 a 0101 | having the necessary means; \"able to swim\"  ",
    "00005100 00 a 01 unable 0 001 ! 00005000 a 0101 | not able  ",
    "00005200 00 s 01 capable(p) 0 001 & 00005000 a 0000 | having capacity  ",
]
ADV = [
    "00006000 02 r 01 quickly 0 000 | with speed; \"she answered quickly\"  ",
]


def write_wordnet(d, noun=None, verb=None, adj=None, adv=None, extra=None):
    """Write a synthetic WordNet into d; extra maps a file name to raw bytes
    appended to it (used to inject malformed lines)."""
    files = {"data.noun": NOUN if noun is None else noun, "data.verb": VERB if verb is None else verb,
             "data.adj": ADJ if adj is None else adj, "data.adv": ADV if adv is None else adv}
    for name, lines in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(HEADER.encode())
            for line in lines:
                f.write(line.encode() + b"\n")
            if extra and name in extra:
                f.write(extra[name])
    plain = {"verb.exc": "ran run\nrunning run\n", "noun.exc": "dogs dog\n", "adj.exc": "abler able\n",
             "adv.exc": "", "sents.vrb": "1 The children %s to the playground\n2 It is %sing\n",
             "sentidx.vrb": "scat%2:38:00:: 1\n"}
    for name, text in plain.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(text.encode())
            if extra and name in extra:
                f.write(extra[name])


def run_main(args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = bc.main(args)
    return rc, out.getvalue(), err.getvalue()


def read_docs(outdir):
    docs = {}
    for split in ("train", "valid", "test"):
        with open(os.path.join(outdir, split + ".txt"), encoding="utf-8") as f:
            docs[split] = [d for d in f.read().split("\n\n") if d]
    return docs


def all_lines(outdir):
    return [line for ds in read_docs(outdir).values() for d in ds for line in d.split("\n")]


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="aik-corpus-test-")
        self.wn = os.path.join(self.tmp, "wn")
        os.mkdir(self.wn)
        self.out = os.path.join(self.tmp, "out")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def build(self, *extra_args, out=None):
        rc, stdout, stderr = run_main([out or self.out, "--wordnet-dir", self.wn, "--source-version",
                                       "test-1", "--quiet", "--valid-percent", "0", "--test-percent", "0"]
                                      + list(extra_args))
        self.assertEqual(rc, 0, stderr)
        with open(os.path.join(out or self.out, "manifest.json"), encoding="utf-8") as f:
            return json.load(f)


class TestContent(Base):
    def test_documents(self):
        write_wordnet(self.wn)
        m = self.build()
        lines = all_lines(self.out)
        text = "\n".join(lines)
        # one document per (synset, lemma): dog, domestic dog, canine, Rex,
        # run, scat, travel, able, unable, capable, quickly
        self.assertEqual(m["total"]["documents"], 11)
        self.assertEqual(m["synsets"], {"data.noun": 3, "data.verb": 2, "data.adj": 3, "data.adv": 1})
        self.assertEqual(m["skipped"], {})
        self.assertEqual(sum(m["lines_by_template"].values()), m["total"]["lines"])
        self.assertEqual(m["total"]["lines"], len(lines))
        self.assertEqual(sorted(m["source"]["files"]), sorted(["data.noun", "data.verb", "data.adj", "data.adv",
                         "noun.exc", "verb.exc", "adj.exc", "adv.exc", "sents.vrb", "sentidx.vrb"]))
        self.assertEqual(m["source"]["version"], "test-1")
        # every lemma gets a definition line, whatever template was drawn
        for w, d in (("dog", "a member of the genus Canis"), ("domestic dog", "a member of the genus Canis"),
                     ("scat", "move fast by using one's feet"), ("capable", "having capacity")):
            e = re.escape(w)
            head = r'^(The word "%s" \(|Define "%s": |"%s" is an? |%s \()' % (e, e, e, e)
            self.assertEqual(sum(1 for x in lines if re.match(head, x) and x.endswith(d + ".")), 1, w)
        # examples go to the lemma they use, inflections included (exc file)
        self.assertRegex(text, r'"dog"[^\n]*: "The dog barked all night\."|dog, as in: "The dog barked')
        self.assertNotRegex(text, r'domestic dog[^\n]*barked')
        self.assertRegex(text, r'"?run"?[^\n]*"He ran to the store\."')
        # scat has no gloss example: it gets its sents.vrb frame
        self.assertRegex(text, r'scat[^\n]*"The children scat to the playground\."')
        self.assertEqual(m["examples"]["from sents.vrb frames"], 1)
        self.assertIn('"Rex" is an instance of dog.', lines)
        self.assertIn('"dog" is a kind of canine.', lines)
        self.assertIn('To run is one way to travel.', lines)
        self.assertFalse(any(x.startswith("To scat") for x in lines))  # stated once per synset
        self.assertIn('The opposite of "able" is "unable".', lines)
        self.assertIn('The opposite of "unable" is "able".', lines)
        self.assertIn('"capable" is similar to "able".', lines)
        # synonyms never list the word itself; adjective markers are gone
        self.assertTrue(any(re.search(r'"dog"', x) and "domestic dog" in x for x in lines))
        self.assertNotIn("(p)", text)
        self.assertNotIn("`", text)
        # every line is one of the templates
        pats = [re.compile("^" + re.escape(t).replace(r"\{w\}", ".+").replace(r"\{pos\}", "(noun|verb|adjective|adverb)")
                           .replace(r"\{apos\}", "an? (noun|verb|adjective|adverb)")
                           .replace(r"\{d\}", ".+").replace(r"\{s\}", ".+").replace(r"\{x\}", ".+")
                           .replace(r"\{list\}", ".+").replace(r"\{first\}", ".+") + "$")
                for kind in bc.TEMPLATES.values() for _, t in kind]
        for x in lines:
            self.assertTrue(any(p.match(x) for p in pats), x)

    def test_split_gloss(self):
        defs, exs, rej = bc.split_gloss('a; b c ; "x; y"; "z"--Shakespeare; ""')
        self.assertEqual(defs, ["a", "b c"])
        self.assertEqual(exs, ["x; y", "z"])
        self.assertEqual(rej, 1)
        # an unbalanced quote swallows the rest of the gloss: rejected, not guessed
        self.assertEqual(bc.split_gloss('a; "bad " quote"; "fine"'), (["a"], [], 1))
        self.assertEqual(bc.split_gloss('"%s"' % ("y" * (bc.MAX_EXAMPLE_CHARS + 1))), ([], [], 1))
        self.assertEqual(bc.clean_definition(["(of `x') big."]), "(of 'x') big")
        self.assertEqual(bc.clean_definition(["x" * (bc.MAX_DEFINITION_CHARS + 1)]), "")
        self.assertEqual(bc.clean_example("able to swim"), "Able to swim.")
        self.assertEqual(bc.clean_example("Is it?"), "Is it?")

    def test_morphology(self):
        exc = {"ran": {"run"}, "geese": {"goose"}}
        tok = bc.TOKEN_RE.findall
        self.assertTrue(bc.mentions(tok("he ran home"), ["run"], exc))
        self.assertTrue(bc.mentions(tok("the geese"), ["goose"], exc))
        self.assertTrue(bc.mentions(tok("she stopped it"), ["stop"], exc))
        self.assertTrue(bc.mentions(tok("he carried it"), ["carry"], exc))
        self.assertTrue(bc.mentions(tok("they gave up hope"), ["give", "up"], {"gave": {"give"}}))
        self.assertFalse(bc.mentions(tok("they gave hope"), ["give", "up"], {"gave": {"give"}}))
        self.assertFalse(bc.mentions(tok("a cat"), ["dog"], exc))
        self.assertFalse(bc.mentions([], ["dog"], exc))
        self.assertEqual(bc.third_person("catch"), "catches")
        self.assertEqual(bc.third_person("fly"), "flies")
        self.assertEqual(bc.third_person("play"), "plays")
        self.assertEqual(bc.third_person("give up"), "gives up")
        self.assertEqual(bc.third_person("be"), "is")
        self.assertEqual(bc.present_participle("run", {"run": ["ran", "running"]}), "running")
        self.assertEqual(bc.present_participle("make", {}), "making")
        self.assertEqual(bc.present_participle("die", {}), "dying")
        self.assertEqual(bc.present_participle("see", {}), "seeing")
        self.assertEqual(bc.fill_frame("It is %sing", "make up", {}), "It is making up.")
        self.assertEqual(bc.fill_frame("The water %ss ", "boil", {}), "The water boils.")

    def test_formats_doc_matches_code(self):
        # FORMATS.md is the contract for the runtime's prompts; the canonical
        # templates in the code must appear there verbatim.
        with open(os.path.join(HERE, "FORMATS.md"), encoding="utf-8") as f:
            doc = f.read()
        for kind, rows in bc.TEMPLATES.items():
            for _, tpl in rows:
                self.assertIn("`" + tpl + "`", doc, kind)
        self.assertIn("format_version %d" % bc.FORMAT_VERSION, doc)


class TestDeterminism(Base):
    def test_twice_identical(self):
        write_wordnet(self.wn)
        self.build()
        self.build(out=self.out + "2")
        for name in ("train.txt", "valid.txt", "test.txt", "manifest.json"):
            with open(os.path.join(self.out, name), "rb") as a, open(os.path.join(self.out + "2", name), "rb") as b:
                self.assertEqual(a.read(), b.read(), name)

    def test_seed_changes_order_only(self):
        write_wordnet(self.wn)
        self.build()
        self.build("--seed", "7", out=self.out + "2")
        a, b = read_docs(self.out)["train"], read_docs(self.out + "2")["train"]
        self.assertEqual(sorted(a), sorted(b))
        self.assertNotEqual(a, b)

    def test_split_stable_when_data_added(self):
        # Real split percentages; the split is a function of the synset only.
        write_wordnet(self.wn)
        run_main([self.out, "--wordnet-dir", self.wn, "--quiet", "--source-version", "x",
                  "--valid-percent", "30", "--test-percent", "30"])
        before = read_docs(self.out)
        more = NOUN + ["00007000 05 n 01 cat 0 000 | a small feline; \"the cat sat\"  "]
        write_wordnet(self.wn, noun=more)
        run_main([self.out + "2", "--wordnet-dir", self.wn, "--quiet", "--source-version", "x",
                  "--valid-percent", "30", "--test-percent", "30"])
        after = read_docs(self.out + "2")
        for split in before:
            kept = [d for d in after[split] if "small feline" not in d]
            self.assertEqual(kept, before[split], split)
        self.assertEqual(sum(len(v) for v in after.values()), sum(len(v) for v in before.values()) + 1)
        # synonyms of one synset share a split (no gloss leaks into valid/test)
        for split, ds in after.items():
            n = sum(1 for d in ds if "a member of the genus Canis" in d)
            self.assertIn(n, (0, 2), split)

    def test_max_bytes(self):
        write_wordnet(self.wn)
        full = self.build("--max-bytes", "0")
        cap = full["total"]["bytes"] // 2
        m = self.build("--max-bytes", str(cap), out=self.out + "2")
        self.assertLessEqual(m["total"]["bytes"], cap)
        # statistics describe the documents written, not those dropped
        self.assertEqual(sum(m["lines_by_template"].values()), m["total"]["lines"])
        self.assertLess(m["total"]["lines"], full["total"]["lines"])
        self.assertGreater(m["total"]["documents"], 0)
        self.assertEqual(m["total"]["documents"] + m["total"]["documents_dropped_by_max_bytes"],
                         full["total"]["documents"])
        # secondary lemmas go first: "scat" is tier 1, "domestic dog" tier 2
        tiers = m["total"]["documents_dropped_by_tier"]
        self.assertEqual(tiers.get("1"), 1)
        self.assertEqual(tiers.get("2"), 1)
        self.assertEqual(sum(tiers.values()), m["total"]["documents_dropped_by_max_bytes"])
        text = "\n".join(all_lines(self.out + "2"))
        if "domestic dog (noun)" in text or 'Define "domestic dog"' in text:
            self.fail("secondary lemma kept while the cap dropped documents")
        tiny = self.build("--max-bytes", "1", out=self.out + "3")
        self.assertEqual(tiny["total"]["documents"], 0)
        self.assertEqual(tiny["splits"]["train"]["bytes"], 0)

    def test_eot_separator(self):
        write_wordnet(self.wn)
        m = self.build("--separator", "eot")
        with open(os.path.join(self.out, "train.txt"), encoding="utf-8") as f:
            body = f.read()
        self.assertEqual(body.count("\n<|endoftext|>\n"), m["splits"]["train"]["documents"])
        self.assertNotIn("\n\n", body)
        with open(os.path.join(self.out, "train.txt"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), m["splits"]["train"]["sha256"])


BAD_NOUN_LINES = [
    ("no ' | ' gloss separator", b"00010000 05 n 01 x 0 000 no gloss"),
    ("synset_offset is not 8 decimal digits", b"0001000 05 n 01 x 0 000 | g"),
    ("synset_offset is not 8 decimal digits", b"0001000x 05 n 01 x 0 000 | g"),
    ("lex_filenum is not 2 decimal digits", b"00010000 5 n 01 x 0 000 | g"),
    ("ss_type is not one of n v a s r", b"00010000 05 q 01 x 0 000 | g"),
    ("ss_type does not belong in this data file", b"00010000 05 v 01 x 0 000 01 + 02 00 | g"),
    ("w_cnt is not 2 hex digits", b"00010000 05 n zz x 0 000 | g"),
    ("w_cnt is zero", b"00010000 05 n 00 000 | g"),
    ("word has characters outside the lemma alphabet", b"00010000 05 n 01 d%g 0 000 | g"),
    ("lex_id is not 1 hex digits", b"00010000 05 n 01 x 00 000 | g"),
    ("line ends before word", b"00010000 05 n 02 x 0 | g"),
    ("line ends before p_cnt", b"00010000 05 n 01 x 0 | g"),
    ("p_cnt is not 3 decimal digits", b"00010000 05 n 01 x 0 01 | g"),
    ("line ends before pointer_symbol", b"00010000 05 n 01 x 0 002 @ 00002000 n 0000 | g"),
    ("pointer offset is not 8 decimal digits", b"00010000 05 n 01 x 0 001 @ 2000 n 0000 | g"),
    ("pointer pos is not one of n v a s r", b"00010000 05 n 01 x 0 001 @ 00002000 q 0000 | g"),
    ("pointer source/target is not 4 hex digits", b"00010000 05 n 01 x 0 001 @ 00002000 n 00 | g"),
    ("pointer source is not 2 hex digits", b"00010000 05 n 01 x 0 001 @ 00002000 n zz00 | g"),
    ("pointer source exceeds w_cnt", b"00010000 05 n 01 x 0 001 @ 00002000 n 0200 | g"),
    ("extra fields before the gloss", b"00010000 05 n 01 x 0 000 junk | g"),
    ("duplicate synset_offset", b"00001000 05 n 01 x 0 000 | g"),
    ("line is not UTF-8", b"00010000 05 n 01 x 0 000 | caf\xe9"),
    ("line longer than", b"00010000 05 n 01 x 0 000 | " + b"y" * (bc.MAX_LINE_BYTES + 10)),
]
BAD_VERB_LINES = [
    ("line ends before f_cnt", b"00010000 38 v 01 x 0 000 | g"),
    ("verb frame does not start with '+'", b"00010000 38 v 01 x 0 000 01 - 02 00 | g"),
    ("f_num is not 2 decimal digits", b"00010000 38 v 01 x 0 000 01 + 2 00 | g"),
    ("w_num is not 2 hex digits", b"00010000 38 v 01 x 0 000 01 + 02 zz | g"),
]


class TestMalformed(Base):
    def check(self, fname, reason, raw):
        write_wordnet(self.wn, extra={fname: raw + b"\n"})
        m = self.build()
        keys = [k for k in m["skipped"] if reason in k]
        self.assertEqual(len(keys), 1, (reason, m["skipped"]))
        self.assertEqual(m["skipped"][keys[0]], 1)
        self.assertTrue(keys[0].startswith(fname + ": "), keys[0])
        # the good synsets are all still there
        self.assertEqual(m["total"]["documents"], 11)

    def test_bad_noun_lines(self):
        for reason, raw in BAD_NOUN_LINES:
            with self.subTest(reason=reason, raw=raw[:60]):
                self.check("data.noun", reason, raw)

    def test_bad_verb_lines(self):
        for reason, raw in BAD_VERB_LINES:
            with self.subTest(reason=reason):
                self.check("data.verb", reason, raw)

    def test_long_line_does_not_leak_tail(self):
        # The tail of an over-long line must not be parsed as a line of its own.
        tail = b" 00010000 05 n 01 leaked 0 000 | leaked gloss"
        write_wordnet(self.wn, extra={"data.noun": b"x" * (3 * bc.MAX_LINE_BYTES) + tail + b"\n"})
        self.build()
        self.assertNotIn("leaked", "\n".join(all_lines(self.out)))

    def test_bad_aux_files(self):
        write_wordnet(self.wn, extra={"verb.exc": b"lonely\nbad%form base\n", "sents.vrb": b"x no number\n3 no slot\n",
                                      "sentidx.vrb": b"pet%2:35:00::\nrun%2:38:00:: 1,x\nscat%2:38:00:: 99\n"})
        m = self.build()
        self.assertEqual(m["skipped"]["verb.exc: not 'inflected base...'"], 2)
        self.assertEqual(m["skipped"]["sents.vrb: not 'number text-with-one-%s'"], 2)
        self.assertEqual(m["skipped"]["sentidx.vrb: not 'sense_key number,number...'"], 2)
        self.assertEqual(m["warnings"]["sentidx.vrb: sentence number not in sents.vrb"], 1)

    def test_dangling_pointers_and_offsets(self):
        noun = NOUN + ["00008000 05 n 01 orphan 0 001 @ 00099999 n 0000 | has no parent  "]
        adj = ADJ + ["00005300 00 a 01 lonely 0 001 ! 00099999 a 0101 | alone  "]
        write_wordnet(self.wn, noun=noun, adj=adj)
        m = self.build()
        self.assertEqual(m["warnings"]["dangling hypernym pointer"], 1)
        self.assertEqual(m["warnings"]["dangling antonym pointer"], 1)
        # synthetic offsets are not byte offsets: counted, not dropped
        self.assertGreater(m["warnings"]["data.noun: synset_offset is not the line's byte offset"], 0)
        self.assertEqual(m["total"]["documents"], 13)

    def test_missing_files(self):
        write_wordnet(self.wn)
        os.remove(os.path.join(self.wn, "sents.vrb"))
        os.remove(os.path.join(self.wn, "adv.exc"))
        m = self.build()
        self.assertIn("sents.vrb/sentidx.vrb: missing, no verb sentence frames", m["warnings"])
        self.assertIn("adv.exc: missing, inflections are matched by rule only", m["warnings"])
        os.remove(os.path.join(self.wn, "data.verb"))
        rc, _, err = run_main([self.out, "--wordnet-dir", self.wn, "--quiet"])
        self.assertEqual(rc, 1)
        self.assertIn("data.verb", err)

    def test_no_synsets(self):
        write_wordnet(self.wn, noun=[], verb=[], adj=[], adv=[])
        rc, _, err = run_main([self.out, "--wordnet-dir", self.wn, "--quiet"])
        self.assertEqual(rc, 1)
        self.assertIn("no valid synsets", err)

    def test_bad_options(self):
        for args in (["--max-bytes", "-1"], ["--valid-percent", "51"], ["--test-percent", "-1"]):
            with self.subTest(args=args):
                with self.assertRaises(SystemExit) as cm:
                    run_main([self.out] + args)
                self.assertEqual(cm.exception.code, 2)

    def test_random_mutations_never_crash(self):
        # A small deterministic mutation fuzzer over the synthetic files: the
        # builder must either build or report an OSError, never raise.
        write_wordnet(self.wn)
        originals = {}
        for name in ("data.noun", "data.verb", "data.adj", "verb.exc", "sentidx.vrb"):
            with open(os.path.join(self.wn, name), "rb") as f:
                originals[name] = f.read()
        rng = random.Random(1234)
        for it in range(150):
            name = rng.choice(sorted(originals))
            data = bytearray(originals[name])
            for _ in range(rng.randint(1, 8)):
                op = rng.randrange(3)
                pos = rng.randrange(len(data) + 1)
                if op == 0 and data:
                    data[min(pos, len(data) - 1)] = rng.randrange(256)
                elif op == 1:
                    data[pos:pos] = bytes([rng.choice(b" |\n;\"%0123456789abz@!+")])
                elif data:
                    del data[pos:pos + rng.randint(1, 20)]
            with open(os.path.join(self.wn, name), "wb") as f:
                f.write(bytes(data))
            stats = {}
            try:
                synsets = bc.load_synsets(self.wn, stats)
                exc, forms = bc.load_exceptions(self.wn, stats)
                vs = bc.load_verb_sentences(self.wn, stats)
                bc.make_docs(synsets, exc, forms, vs, stats)
            except Exception as e:  # noqa: BLE001 - that is the point
                self.fail("iteration %d (%s): %r" % (it, name, e))
            with open(os.path.join(self.wn, name), "wb") as f:
                f.write(originals[name])


@unittest.skipUnless(os.environ.get("AIK_CORPUS_REAL") == "1" and os.path.exists("/usr/share/wordnet/data.noun"),
                     "set AIK_CORPUS_REAL=1 to build the real corpus")
class TestRealWordNet(Base):
    def test_real_twice_identical(self):
        a, b = os.path.join(self.tmp, "a"), os.path.join(self.tmp, "b")
        for d in (a, b):
            rc, _, err = run_main([d, "--quiet"])
            self.assertEqual(rc, 0, err)
        for name in ("train.txt", "valid.txt", "test.txt", "manifest.json"):
            with open(os.path.join(a, name), "rb") as x, open(os.path.join(b, name), "rb") as y:
                self.assertEqual(x.read(), y.read(), name)
        with open(os.path.join(a, "manifest.json"), encoding="utf-8") as f:
            m = json.load(f)
        self.assertGreater(m["total"]["bytes"], 15000000)
        self.assertLessEqual(m["total"]["bytes"], 30000000)
        self.assertEqual(sum(m["synsets"].values()), 117659)


if __name__ == "__main__":
    unittest.main()
