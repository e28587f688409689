using System.Buffers.Binary;
using System.IO.Compression;
using System.Text.Json.Nodes;
using ClipGen.Checkpoints;
using ClipGen.Tests.Checkpoints;
using ClipGen.Tests.Hardening;

namespace ClipGen.Hostile;

/// <summary>Every reproduction of issue 12 that ClipGen's hardening covers, plus a variant of each, generated into a temporary folder.</summary>
sealed class Corpus(RunnerOptions options) : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("clipgen-hostile-").FullName;
    readonly List<IDisposable> _servers = [];
    int _runs;
    string F(string name) => Path.Combine(_dir, name);
    string Fixture(params string[] parts) => Path.Combine([options.Fixtures, .. parts]);
    string TinyVitWeights => Fixture("reference", "openai", "tiny-vit", "model.safetensors");
    string TinyVitInputs => Fixture("reference", "openai", "tiny-vit", "inputs.safetensors");
    string Png => Fixture("preprocess", "images", "coffee.png");
    /// <summary>The tests' tiny ViT (not a built-in spec, so the child process loads it from its YAML).</summary>
    string TinyVit => Path.Combine(options.RepoRoot, "tests", "ClipGen.Tests", "specs", "tiny-vit.yaml");

    public CaseResult Run(Case c)
    {
        if (c.SkipBecause is { } why) return new CaseResult(c, true, true, 0, 0, 0, why, "");
        using var setup = c.Setup?.Invoke();
        var work = Directory.CreateDirectory(F("work-" + Interlocked.Increment(ref _runs))).FullName;
        var (exit, peak, seconds, _, stderr, killed) = ChildProcess.Run(options.ClipGen, c.Args, c.MaxMB, c.MaxSeconds, work, F("cache"));
        var problems = new List<string>();
        if (killed) problems.Add("killed past twice its bounds");
        if (exit != c.Exit) problems.Add($"exit {exit}, expected {c.Exit}");
        foreach (var f in c.Fragments) if (!stderr.Contains(f, StringComparison.Ordinal)) problems.Add($"no '{f}' in stderr");
        foreach (var a in c.Absent) if (stderr.Contains(a, StringComparison.Ordinal)) problems.Add($"stderr contains '{Printable(a)}'");
        if (stderr.Split('\n').Max(l => l.Length) > c.MaxLineLength) problems.Add($"a stderr line is over {c.MaxLineLength} characters");
        if (exit == 1 || stderr.Contains("internal error", StringComparison.Ordinal)) problems.Add("internal error");
        if (peak > c.MaxMB) problems.Add($"peak {peak:F0} MB over {c.MaxMB} MB");
        if (seconds > c.MaxSeconds) problems.Add($"{seconds:F1} s over {c.MaxSeconds} s");
        if (problems.Count == 0 && c.Check?.Invoke() is { } bad) problems.Add(bad);
        var firstLine = stderr.Split('\n').FirstOrDefault(l => l.StartsWith("error", StringComparison.Ordinal) || l.StartsWith("skipped", StringComparison.Ordinal)) ?? "";
        var note = problems.Count > 0 ? string.Join("; ", problems) + " | " + Printable(Trim(stderr.Trim(), 300)) : Printable(Trim(firstLine, 110));
        return new CaseResult(c, problems.Count == 0, false, exit, peak, seconds, note, Trim(stderr, 4000));
    }

    static string Trim(string s, int n) => s.Length <= n ? s : s[..n] + "…";
    static string Printable(string s) => new(s.Select(c => char.IsControl(c) ? '·' : c).ToArray());

    public IEnumerable<Case> Cases()
    {
        var spec = HostileCorpus.ValidSpec(options.RepoRoot);
        string Yaml(string name, string text) { File.WriteAllText(F(name), text); return F(name); }
        string[] Preprocess(string model) => ["preprocess", "--model", model, "--image", Png, "--output", F("px.safetensors")];

        // 1, 2: YAML alias bombs and deep nesting.
        yield return new Case("1", "alias bomb 10x10 (lists)", Preprocess(Yaml("bomb.yaml", HostileCorpus.AliasBomb(spec))), 2, ["CLIPGEN001", "expands to more than"], 700, 30);
        yield return new Case("1", "alias bomb 6x40 (mappings)", Preprocess(Yaml("bomb-map.yaml", HostileCorpus.MappingAliasBomb(spec))), 2, ["CLIPGEN001", "expands to more than"], 700, 30);
        yield return new Case("2", "20,000 nested [", Preprocess(Yaml("deep.yaml", HostileCorpus.DeepNesting(spec))), 2, ["CLIPGEN001", "nest more than 64"], 700, 30);
        yield return new Case("2", "1,500 nested block mappings (1 MB, under the file limit)", Preprocess(Yaml("deep-block.yaml", HostileCorpus.DeepBlockMappings(1500))), 2, ["CLIPGEN001", "nest more than 64"], 700, 30);

        // 7: spec sizes that cannot fit are refused before anything is allocated (a size past the language's maximum is a
        // spec error at its line; a plan past the memory limit is refused with the parameter count).
        string Grown(string name, string from, string to) =>
            spec.Contains(from, StringComparison.Ordinal) ? Yaml(name, spec.Replace(from, to, StringComparison.Ordinal)) : throw new InvalidOperationException($"demo-tiny.yaml has no '{from}'");
        var train7 = HostileCorpus.TrainingSet(F("train7"));
        yield return new Case("7", "vision.layers: 1000000, train", ["train", "--spec", Grown("layers-1m.yaml", "  layers: 3\n", "  layers: 1000000\n"), "--train", train7, "--output", F("run7a"), "--epochs", "1", "--threads", "1"], 2, ["CLIPGEN", "layers", "1024"], 700, 30);
        yield return new Case("7", "1024 layers of width 8192, train", ["train", "--spec", Grown("wide-vit.yaml", "  layers: 3\n  width: 96\n", "  layers: 1024\n  width: 8192\n"), "--train", train7, "--output", F("run7b"), "--epochs", "1", "--threads", "1"], 2, ["parameters", "CLIPGEN_MAX_MODEL_BYTES"], 700, 30);
        yield return new Case("7", "text width 2^20, classify reports it before reading weights", ["classify", "--model", Grown("wide-text.yaml", "  width: 96\n  heads: 3\n", "  width: 1048576\n  heads: 4\n"), "--weights", TinyVitWeights, "--labels", "a,b", "--image", Png], 2, ["parameters", "CLIPGEN_MAX_MODEL_BYTES"], 700, 30);

        // 3: pickle amplification.
        HostileCorpus.PickleAmplification(F("lists-deflated.pt"), 200_000_000, deflate: true);
        yield return new Case("3", "200M ']' deflated to ~200 KB", ["spec", "infer", "--weights", F("lists-deflated.pt")], 2, ["expands from", "more than 100 times"], 700, 30);
        HostileCorpus.PickleAmplification(F("lists-stored.pt"), 20_000_000, deflate: false);
        yield return new Case("3", "20M ']' stored (20 MB)", ["spec", "infer", "--weights", F("lists-stored.pt")], 2, ["creates more than"], 1200, 60);

        // 4: TorchScript DAG.
        HostileCorpus.TorchScriptDag(F("dag40.pt"), 40);
        yield return new Case("4", "TorchScript DAG, 40 nodes x 2 edges", ["spec", "infer", "--weights", F("dag40.pt")], 2, [], 700, 30);
        HostileCorpus.TorchScriptDag(F("dag200.pt"), 200);
        yield return new Case("4", "TorchScript DAG, 200 nodes x 2 edges", ["spec", "infer", "--weights", F("dag200.pt")], 2, [], 700, 30);

        // 5: one code file shared by many classes.
        HostileCorpus.SharedCodeFile(F("code3000.pt"), 3000, 15 << 20);
        yield return new Case("5", "3,000 classes share a 15 MB code file", ["spec", "infer", "--weights", F("code3000.pt")], 2, [], 900, 40);
        HostileCorpus.SharedCodeFile(F("code1000.pt"), 1000, 5 << 20);
        yield return new Case("5", "1,000 classes share a 5 MB code file", ["spec", "infer", "--weights", F("code1000.pt")], 2, [], 800, 30);

        // 6: strided views of one deflated storage, as the weights of a real model.
        StridedTinyVit(F("views-deflated.pt"), 32 << 20, deflate: true);
        yield return new Case("6", "tiny-vit as strided views of 128 MB deflated", Infer(F("views-deflated.pt")), 0, [], 1500, 40);
        StridedTinyVit(F("views-stored.pt"), 32 << 20, deflate: false);
        yield return new Case("6", "tiny-vit as strided views of 128 MB stored", Infer(F("views-stored.pt")), 0, [], 1500, 40);

        // 9: training with bad images.
        var train9 = TrainingSet("train9", ("zzz_empty.jpg", []), ("zzz_bomb.png", HostileCorpus.PngHeader(20000, 20000)));
        yield return new Case("9", "train: empty .jpg and a 20000x20000 PNG", Train(train9, F("run9"), "--batch-size", "18"), 0, ["skipped", "the file is empty", "above the limit"], 1500, 120);
        var train9b = TrainingSet("train9b", ("zzz_text.png", "not an image"u8.ToArray()), ("zzz_cut.jpg", File.ReadAllBytes(Fixture("preprocess", "images", "synth_q90_420.jpg"))[..500]));
        yield return new Case("9", "train: text named .png, truncated .jpg", Train(train9b, F("run9b"), "--batch-size", "18"), 0, ["skipped", "not a recognised image", "truncated"], 1500, 120);

        // 11: downloads.
        var unpinned = Yaml("demo-web.yaml", HostileCorpus.UnpinnedSpec(spec));
        string[] Download(HostileHttpServer s, params string[] more) => ["download", unpinned, "--url-base", s.BaseUrl.ToString(), "--quiet", .. more];
        var silent = Server(new HostileHttpServer(HostileServerMode.Silent));
        yield return new Case("11", "server never sends headers (--timeout 2)", Download(silent, "--timeout", "2"), 2, ["timed out", "no response"], 700, 30);
        var drip = Server(new HostileHttpServer(HostileServerMode.Drip, dripInterval: TimeSpan.FromSeconds(2)));
        yield return new Case("11", "1 byte every 2 s (--timeout 3)", Download(drip, "--timeout", "3"), 2, ["timed out"], 700, 40);
        yield return new Case("11", "1 byte every 2 s (--max-time 4)", Download(drip, "--max-time", "4"), 2, ["timed out", "whole download"], 700, 30);
        var endless = Server(new HostileHttpServer(HostileServerMode.Endless));
        yield return new Case("11", "endless unpinned body", Download(endless), 2, ["sent more than"], 700, 60)
        { Check = () => Directory.EnumerateFiles(F("cache"), "*", SearchOption.AllDirectories).Any() ? "something was left in the cache" : null };
        var cut = Server(new HostileHttpServer(HostileServerMode.TruncatedNoLength, File.ReadAllBytes(Fixture("reference", "openai", "tiny-vit", "openai_state_dict.pt"))));
        yield return new Case("11", "unpinned body cut short, no Content-Length", Download(cut), 2, ["not a complete checkpoint", "no Content-Length"], 700, 30);

        // 8: embed where one whole batch is unreadable: skipped and reported, the others embedded; a second run resumes.
        var embed8 = F("embed8");
        Directory.CreateDirectory(embed8);
        for (int i = 0; i < 6; i++) File.Copy(Png, Path.Combine(embed8, $"img{i}.png"));
        File.WriteAllBytes(Path.Combine(embed8, "zzz_bad.jpg"), []);
        string[] Embed8(string output) => ["embed", "--model", TinyVit, "--weights", TinyVitWeights, "--input", embed8, "--output", output, "--batch-size", "3"];
        yield return new Case("8", "embed: the last batch is all unreadable", Embed8(F("embed8.safetensors")), 0, ["zzz_bad.jpg", "empty"], 1500, 60)
        { Check = () => File.Exists(F("embed8.safetensors")) ? null : "no index written" };
        var embed8b = F("embed8b");
        Directory.CreateDirectory(embed8b);
        for (int i = 0; i < 3; i++) File.WriteAllBytes(Path.Combine(embed8b, $"bad{i}.jpg"), [0xFF, 0xD8, 0xFF]);
        for (int i = 0; i < 3; i++) File.Copy(Png, Path.Combine(embed8b, $"good{i}.png"));
        yield return new Case("8", "embed: the first batch is all unreadable", ["embed", "--model", TinyVit, "--weights", TinyVitWeights, "--input", embed8b, "--output", F("embed8b.safetensors"), "--batch-size", "3"], 0, ["bad0.jpg"], 1500, 60)
        { Check = () => File.Exists(F("embed8b.safetensors")) ? null : "no index written" };

        // 12: lying configs are refused with the key and the value, not read as defaults.
        yield return new Case("12", "HF num_attention_heads: \"2\"", ["spec", "infer", "--weights", LyingHf("hf12a", c => c["vision_config"]!["num_attention_heads"] = "2")], 2, ["num_attention_heads", "a whole number", "\"2\""], 700, 30);
        yield return new Case("12", "HF num_attention_heads: 2.0", ["spec", "infer", "--weights", LyingHf("hf12b", c => c["vision_config"]!["num_attention_heads"] = JsonNode.Parse("2.0"))], 2, ["num_attention_heads", "a whole number"], 700, 30);
        yield return new Case("12", "open_clip heads: \"2\"", ["spec", "infer", "--weights", LyingOpenClip("oc12a", c => c["model_cfg"]!["text_cfg"]!["heads"] = "2")], 2, ["heads", "a whole number"], 700, 30);
        yield return new Case("12", "open_clip head_width: 32.0", ["spec", "infer", "--weights", LyingOpenClip("oc12b", c => c["model_cfg"]!["vision_cfg"]!["head_width"] = JsonNode.Parse("32.0"))], 2, ["head_width", "a whole number"], 700, 30);

        // 15: a second embed on an output that another run holds fails at once, naming the lock.
        var lockOut = F("embed15.safetensors");
        yield return new Case("15", "embed while another run holds the output", Embed8(lockOut), 2, ["embed15.safetensors"], 700, 30)
        { Setup = () => ClipGen.Applications.FolderEmbedder.Lock(lockOut, ClipGen.Applications.EmbedFormat.ClipGen, ClipGen.Datasets.TaskPartition.Whole) };

        // 13: ONNX input validation (the same as Torch's).
        yield return new Case("13", "onnx: input_ids -5", InferIds(F("ids-neg.safetensors"), -5, "onnx"), 2, ["token id -5 is outside the vocabulary"], 1500, 60);
        yield return new Case("13", "onnx: input_ids 1e9", InferIds(F("ids-big.safetensors"), 1_000_000_000, "onnx"), 2, ["token id 1000000000 is outside"], 1500, 60);
        yield return new Case("13", "torch: input_ids -5 (same message)", InferIds(F("ids-neg-t.safetensors"), -5, "torch"), 2, ["token id -5 is outside the vocabulary"], 1500, 60);

        // 14: internal errors and hangs.
        File.WriteAllBytes(F("offsets-strings.safetensors"), HostileCorpus.SafetensorsWithOffsets("[\"0\", \"8\"]"));
        yield return new Case("14", "safetensors data_offsets as strings", ["spec", "infer", "--weights", F("offsets-strings.safetensors")], 2, ["data_offsets"], 700, 30);
        File.WriteAllBytes(F("offsets-null.safetensors"), HostileCorpus.SafetensorsWithOffsets("[null, null]"));
        yield return new Case("14", "safetensors data_offsets as nulls", ["spec", "infer", "--weights", F("offsets-null.safetensors")], 2, ["data_offsets"], 700, 30);
        yield return new Case("14", "sharded index lists a key twice", ["spec", "infer", "--weights", ShardedTwice()], 2, ["twice"], 700, 30);
        File.CreateSymbolicLink(F("zero.png"), "/dev/zero");
        yield return new Case("14", "image is a symlink to /dev/zero", ["preprocess", "--image", F("zero.png"), "--output", F("z.safetensors")], 2, ["not a regular file (a character device)"], 700, 30);
        using (var mk = System.Diagnostics.Process.Start("mkfifo", F("fifo.jpg"))) mk.WaitForExit();
        yield return new Case("14", "image is a FIFO named .jpg", ["preprocess", "--image", F("fifo.jpg"), "--output", F("f.safetensors")], 2, ["not a regular file (a FIFO)"], 700, 30);
        var train14 = TrainingSet("train14");
        yield return new Case("14", "train --lr NaN", Train(train14, F("run14a"), "--lr", "NaN"), 2, ["LearningRate must be a finite number"], 1200, 60);
        var hugeScale = Yaml("huge-scale.yaml", spec.Replace("init_logit_scale: 2.6592600369262695", "init_logit_scale: 1e308").Replace("name: demo-tiny", "name: huge-scale").Replace("class_name: DemoTiny", "class_name: HugeScale"));
        yield return new Case("14", "train init_logit_scale: 1e308", ["train", "--spec", hugeScale, "--train", train14, "--output", F("run14b"), "--epochs", "1", "--batch-size", "8", "--threads", "1"], 2, ["training diverged", "nothing was saved"], 1200, 60)
        { Check = () => File.Exists(Path.Combine(F("run14b"), "checkpoint.safetensors")) ? "a checkpoint was written" : null };
        yield return new Case("14", "trainer_state.json with a negative epoch", Train(train14, F("run14c"), "--resume=true"), 2, ["\"Epoch\" is -1"], 1200, 60)
        { Setup = () => { FinishedRun(train14, F("run14c")); EditState(F("run14c"), "\"Epoch\": 2,", "\"Epoch\": -1,"); return null; } };
        HostileCorpus.ShortEntry(F("short.pt"));
        yield return new Case("14", "zip entry shorter than declared", ["spec", "infer", "--weights", F("short.pt")], 2, ["short.pt", "'archive/data.pkl'", "ends after"], 700, 30);

        // 16: resume bookkeeping.
        yield return new Case("16", "metrics line lost to a kill comes back", Train(train14, F("run16a"), "--resume=true"), 0, [], 1200, 90)
        {
            Setup = () => { FinishedRun(train14, F("run16a")); var m = Path.Combine(F("run16a"), "metrics.jsonl"); File.WriteAllLines(m, File.ReadAllLines(m)[..1]); return null; },
            Check = () => File.ReadAllLines(Path.Combine(F("run16a"), "metrics.jsonl")).Length == 2 ? null : "metrics.jsonl does not have both epochs",
        };
        // 10: flags take no value: --resume as the last word resumes; a value after --freeze-image-tower is refused, not swallowed.
        yield return new Case("10", "train --resume as the last argument", Train(train14, F("run10a"), "--epochs", "3", "--resume"), 0, [], 1200, 120)
        {
            Setup = () => { FinishedRun(train14, F("run10a")); return null; },
            Check = () => File.ReadAllLines(Path.Combine(F("run10a"), "metrics.jsonl")).Length == 3 ? null : "the resumed run did not add its third epoch",
        };
        yield return new Case("10", "--freeze-image-tower 1 does not swallow the 1", Train(train14, F("run10b"), "--freeze-image-tower", "1"), 2, ["unexpected argument '1'"], 700, 30);

        yield return new Case("16", "existing run is not overwritten", Train(train14, F("run16b")), 2, ["already holds a training run", "--resume", "--force"], 1200, 60)
        { Setup = () => { FinishedRun(train14, F("run16b")); return null; } };

        // 17: zip CRC.
        File.Copy(Fixture("reference", "openai", "tiny-vit", "openai_state_dict.pt"), F("flipped.pt"), overwrite: true);
        HostileCorpus.FlipStoredByte(F("flipped.pt"), BiggestStorage(F("flipped.pt")), 10);
        yield return new Case("17", "one flipped byte in a stored tensor", Infer(F("flipped.pt")), 2, ["fails its CRC-32 check"], 1500, 60);
        File.Copy(Fixture("reference", "openai", "tiny-vit", "openai_jit.pt"), F("flipped-jit.pt"), overwrite: true);
        HostileCorpus.FlipStoredByte(F("flipped-jit.pt"), BiggestStorage(F("flipped-jit.pt")), 100);
        yield return new Case("17", "one flipped byte in a TorchScript tensor", Infer(F("flipped-jit.pt")), 2, ["fails its CRC-32 check"], 1500, 60);

        // 18: JPEG corrupted mid-scan.
        var noTurbo = File.Exists("/usr/lib/x86_64-linux-gnu/libturbojpeg.so.0") || File.Exists("/usr/lib/aarch64-linux-gnu/libturbojpeg.so.0") ? null : "libturbojpeg0 is not installed";
        File.WriteAllBytes(F("corrupt.jpg"), HostileCorpus.CorruptMidScan(File.ReadAllBytes(Fixture("preprocess", "images", "synth_q90_420.jpg"))));
        yield return new Case("18", "JPEG corrupted mid-scan", ["preprocess", "--image", F("corrupt.jpg"), "--output", F("j.safetensors")], 2, ["the JPEG data is corrupt"], 700, 30) { SkipBecause = noTurbo };
        yield return new Case("18", "JPEG corrupted mid-scan, in classify", ["classify", "--model", TinyVit, "--weights", TinyVitWeights, "--labels", "a,b", "--image", F("corrupt.jpg")], 2, ["the JPEG data is corrupt"], 1500, 60) { SkipBecause = noTurbo };

        // 19: thread counts.
        yield return new Case("19", "classify --threads 5000", ["classify", "--model", TinyVit, "--weights", TinyVitWeights, "--labels", "a,b", "--image", Png, "--threads", "5000"], 2, ["--threads must be a whole number from 1 to"], 700, 30);
        yield return new Case("19", "train --threads 100000", Train(train14, F("run19"), "--threads", "100000"), 2, ["--threads must be a whole number from 1 to"], 700, 30);

        // 20: control characters and huge names.
        var name = "\u001b[31mred\u001b]0;title\u0007\nerror: a fake line " + new string('n', 100_000);
        yield return new Case("20", "control characters and a 100 KB model name", ["preprocess", "--model", name, "--image", Png, "--output", F("n.safetensors")], 2, ["\\x1b[31m"], 700, 30)
        { Absent = ["\u001b", "\u0007"], MaxLineLength = 4_000 };
        var csv20 = Path.Combine(Path.GetDirectoryName(train14)!, "train20.csv");
        File.WriteAllText(csv20, File.ReadAllText(train14) + "\"\u001b[2Jwiped\u0007.png\",a caption\n");
        yield return new Case("20", "control characters in a CSV path", Train(csv20, F("run20"), "--lr", "NaN"), 2, ["skipped", "\\x1b[2Jwiped"], 1200, 60) { Absent = ["\u001b", "\u0007"] };
    }

    /// <summary>The Hugging Face tiny ViT in its own folder with its config.json edited.</summary>
    string LyingHf(string folder, Action<JsonObject> edit) =>
        HostileCorpus.EditedCheckpointFolder(F(folder), Fixture("reference", "hf", "tiny-vit"), "config.json", "model.safetensors", edit);

    /// <summary>The open_clip tiny ViT in its own folder with its open_clip_config.json edited.</summary>
    string LyingOpenClip(string folder, Action<JsonObject> edit) =>
        HostileCorpus.EditedCheckpointFolder(F(folder), Fixture("reference", "open_clip", "tiny-vit-gelu"), "open_clip_config.json", "open_clip_model.safetensors", edit);

    string[] Infer(string weights) => ["infer", "--model", TinyVit, "--weights", weights, "--inputs", TinyVitInputs, "--output", F("out-" + Path.GetFileNameWithoutExtension(weights) + ".safetensors")];

    string[] InferIds(string path, long id, string backend)
    {
        var data = new byte[24];
        BinaryPrimitives.WriteInt64LittleEndian(data, 49406);
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(8), id);
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(16), 49407);
        File.WriteAllBytes(path, CheckpointFiles.SafeTensors("{\"input_ids\":{\"dtype\":\"I64\",\"shape\":[1,3],\"data_offsets\":[0,24]}}", data));
        return ["infer", "--model", TinyVit, "--weights", TinyVitWeights, "--inputs", path, "--output", path + ".out", "--backend", backend];
    }

    static string[] Train(string csv, string output, params string[] more) =>
        ["train", "--spec", "demo-tiny", "--train", csv, "--output", output, "--epochs", "2", "--batch-size", "8", "--lr", "1e-3", "--warmup", "1", "--threads", "1", .. more];

    /// <summary>A 2-epoch run, trained once and copied for each case that needs one.</summary>
    void FinishedRun(string csv, string output)
    {
        var done = F("finished-run");
        if (!Directory.Exists(done))
        {
            var r = ChildProcess.Run(options.ClipGen, Train(csv, done), 1200, 120, _dir, F("cache"));
            if (r.Exit != 0) throw new InvalidOperationException("the setup training run failed: " + r.Stderr);
        }
        Directory.CreateDirectory(output);
        foreach (var f in Directory.GetFiles(done)) File.Copy(f, Path.Combine(output, Path.GetFileName(f)), overwrite: true);
    }

    static void EditState(string run, string from, string to)
    {
        var path = Path.Combine(run, "trainer_state.json");
        var text = File.ReadAllText(path);
        if (!text.Contains(from, StringComparison.Ordinal)) throw new InvalidOperationException($"'{from}' not in {path}");
        File.WriteAllText(path, text.Replace(from, to));
    }

    string TrainingSet(string folder, params (string Name, byte[] Bytes)[] bad) => HostileCorpus.TrainingSet(F(folder), bad);

    HostileHttpServer Server(HostileHttpServer s) { _servers.Add(s); return s; }

    string ShardedTwice()
    {
        var dir = F("sharded");
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "s1.safetensors"), CheckpointFiles.SafeTensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", CheckpointFiles.Floats(1, 2)));
        var index = Path.Combine(dir, "model.safetensors.index.json");
        File.WriteAllText(index, "{\"weight_map\": {\"w\": \"s1.safetensors\", \"w\": \"s1.safetensors\"}}");
        return index;
    }

    static string BiggestStorage(string zipPath)
    {
        using var zip = ZipFile.OpenRead(zipPath);
        return zip.Entries.Where(e => e.FullName.Contains("/data/", StringComparison.Ordinal)).MaxBy(e => e.Length)!.FullName;
    }

    /// <summary>
    /// tiny-vit's weights (names and shapes of the reference state dict), every matrix a transposed view of one storage of
    /// <paramref name="floats"/> random floats, spread over all of it: each view needs a span of that storage.
    /// </summary>
    void StridedTinyVit(string path, int floats, bool deflate)
    {
        List<(string Name, long[] Shape)> tensors;
        using (var source = CheckpointReader.Open(Fixture("reference", "openai", "tiny-vit", "openai_state_dict.pt")))
            tensors = source.Entries.Select(e => (e.Name, e.Shape)).ToList();
        var p = new PickleWriter().EmptyDict().Mark();
        long slot = floats / tensors.Count;
        for (int k = 0; k < tensors.Count; k++)
        {
            var (name, shape) = tensors[k];
            long count = shape.Aggregate(1L, (a, b) => a * b);
            if (count > slot) throw new InvalidOperationException($"{name} does not fit a slot of {slot}");
            long offset = k * slot + (slot - count); // the end of its slot, so that the views together span the storage
            long[] stride = shape.Length == 2 ? [1, shape[0]] : Contiguous(shape);
            p.Str(name).Tensor("FloatStorage", "0", floats, offset, shape, stride);
        }
        p.SetItems();
        using var file = File.Create(path);
        using var zip = new ZipArchive(file, ZipArchiveMode.Create);
        var pkl = zip.CreateEntry("views/data.pkl", CompressionLevel.NoCompression);
        using (var s = pkl.Open()) s.Write(p.Stop().ToArray());
        var entry = zip.CreateEntry("views/data/0", deflate ? CompressionLevel.Fastest : CompressionLevel.NoCompression);
        using var data = entry.Open();
        var rng = new Random(6);
        var chunk = new byte[1 << 20];
        for (int i = 0; i < chunk.Length; i += 4) BinaryPrimitives.WriteSingleLittleEndian(chunk.AsSpan(i), (float)(rng.NextDouble() - 0.5) * 0.04f);
        for (long written = 0; written < 4L * floats; written += chunk.Length) data.Write(chunk, 0, (int)Math.Min(chunk.Length, 4L * floats - written));
    }

    static long[] Contiguous(long[] shape)
    {
        var stride = new long[shape.Length];
        long s = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { stride[i] = s; s *= shape[i]; }
        return stride;
    }

    public void Dispose()
    {
        foreach (var s in _servers) s.Dispose();
        if (!options.Keep) { try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } }
    }
}
