using System.Diagnostics;
using System.Text.Json;
using ClipGen.Applications;
using ClipGen.Datasets;
using ClipGen.Tests.Datasets;
using SkiaSharp;
using Xunit;
using Xunit.Abstractions;

namespace ClipGen.Tests.Applications;

/// <summary>
/// <c>clipgen embed --input</c> over WebDataset shards, lists and folders; the clip-retrieval layout read back by numpy
/// and by Apache's C++ Parquet library; <c>--tasks</c>; the output lock; resume; damaged shards; an all-unreadable batch.
/// </summary>
public class ScaleEmbedTests(ITestOutputHelper output)
{
    static string Weights => AppFixtures.Weights("openai/tiny-vit");

    /// <summary>The fixture images, as (key, extension, bytes, caption, json).</summary>
    static List<(string Key, string Ext, byte[] Data, string Caption, string Json)> Samples()
    {
        var names = new[] { "coffee.png", "horse.png", "CLIP.png", "synth_q90_420.jpg", "bilevel.png", "crop_200x203.png", "noresize_300x224.png", "strip_w1_h500.png", "synth_gray.png", "synth_rgba.png" };
        return names.Select((n, i) => (
            Key: $"{i:D6}",
            Ext: Path.GetExtension(n).TrimStart('.'),
            Data: File.ReadAllBytes(Fixtures.Path_("preprocess", "images", n)),
            Caption: $"a photo of {Path.GetFileNameWithoutExtension(n).Replace('_', ' ')}",
            Json: $"{{\"url\": \"http://example.invalid/{n}\", \"width\": {100 + i}, \"nsfw\": {i / 10.0:F1}, \"exif\": {{\"iso\": {i}}}}}")).ToList();
    }

    /// <summary>Shards of the samples (split as given), plus, in the last shard, an undecodable image and a sample without an image.</summary>
    static List<string> MakeShards(string dir, params int[] split)
    {
        var samples = Samples();
        var shards = new List<string>();
        int start = 0;
        for (int s = 0; s < split.Length; s++)
        {
            var path = Path.Combine(dir, $"shard-{s:D5}.tar");
            var members = new List<(string, byte[])>();
            foreach (var x in samples.Skip(start).Take(split[s]))
            {
                members.Add(($"{x.Key}.{x.Ext}", x.Data));
                members.Add(($"{x.Key}.txt", System.Text.Encoding.UTF8.GetBytes(x.Caption)));
                members.Add(($"{x.Key}.json", System.Text.Encoding.UTF8.GetBytes(x.Json)));
            }
            if (s == split.Length - 1)
            {
                members.Add(("000100.jpg", [0xFF, 0xD8, 0xFF, 1, 2, 3]));
                members.Add(("000100.txt", "broken"u8.ToArray()));
                members.Add(("000101.txt", "no image"u8.ToArray()));
            }
            DatasetTests.WriteTar(path, members);
            shards.Add(path);
            start += split[s];
        }
        return shards;
    }

    /// <summary>The same images as files named key.ext, embedded with the ClipGen format: the reference rows by key.</summary>
    static Dictionary<string, float[]> FolderEmbedding(string dir)
    {
        var folder = Path.Combine(dir, "folder");
        Directory.CreateDirectory(folder);
        foreach (var x in Samples()) File.WriteAllBytes(Path.Combine(folder, $"{x.Key}.{x.Ext}"), x.Data);
        var index = Path.Combine(dir, "folder.safetensors");
        var (code, _, err) = TestUtil.Cli("embed", "--model", "tiny-vit", "--weights", Weights, "--input", folder, "--output", index, "--quiet");
        Assert.True(code == 0, err);
        var loaded = EmbeddingIndex.Load(index);
        return Enumerable.Range(0, loaded.Count).ToDictionary(i => Path.GetFileNameWithoutExtension(loaded.Files[i]), i => loaded[i].ToArray());
    }

    /// <summary>A Python with numpy: Debian's (CI installs python3-numpy) or the one on PATH.</summary>
    static string? PythonWithNumpy()
    {
        foreach (var python in new[] { "/usr/bin/python3", "python3" })
        {
            try
            {
                using var p = Process.Start(new ProcessStartInfo(python, ["-c", "import numpy"]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
                p.WaitForExit();
                if (p.ExitCode == 0) return python;
            }
            catch (System.ComponentModel.Win32Exception) { }
        }
        return null;
    }

    /// <summary>numpy's view of an .npy file: shape, dtype and the values as float64.</summary>
    static (long[] Shape, string DType, double[] Values) NumpyLoad(string python, string path)
    {
        const string script = "import json, sys, numpy as np\na = np.load(sys.argv[1])\nprint(json.dumps({'shape': list(a.shape), 'dtype': str(a.dtype), 'values': a.astype('float64').ravel().tolist()}))";
        using var p = Process.Start(new ProcessStartInfo(python, ["-c", script, path]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var stdout = p.StandardOutput.ReadToEnd();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"numpy could not load {path}: {stderr}");
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        return (root.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray(), root.GetProperty("dtype").GetString()!,
            root.GetProperty("values").EnumerateArray().Select(e => e.GetDouble()).ToArray());
    }

    /// <summary>A parquet file's columns as read by Apache's C++ library (ParquetSharp), by name.</summary>
    static Dictionary<string, object?[]> ReadParquet(string path)
    {
        using var reader = new ParquetSharp.ParquetFileReader(path);
        var result = new Dictionary<string, object?[]>();
        int columns = reader.FileMetaData.NumColumns;
        var names = Enumerable.Range(0, columns).Select(i => reader.FileMetaData.Schema.Column(i).Path.ToDotString()).ToArray();
        var data = names.Select(_ => new List<object?>()).ToArray();
        for (int g = 0; g < reader.FileMetaData.NumRowGroups; g++)
        {
            using var group = reader.RowGroup(g);
            long rows = group.MetaData.NumRows;
            for (int c = 0; c < columns; c++)
            {
                using var col = group.Column(c);
                var type = col.ColumnDescriptor.PhysicalType;
                object?[] values = type switch
                {
                    ParquetSharp.PhysicalType.Int64 => col.LogicalReader<long?>().ReadAll((int)rows).Select(v => (object?)v).ToArray(),
                    ParquetSharp.PhysicalType.Double => col.LogicalReader<double?>().ReadAll((int)rows).Select(v => (object?)v).ToArray(),
                    ParquetSharp.PhysicalType.Boolean => col.LogicalReader<bool?>().ReadAll((int)rows).Select(v => (object?)v).ToArray(),
                    _ => col.LogicalReader<string?>().ReadAll((int)rows).Select(v => (object?)v).ToArray(),
                };
                data[c].AddRange(values);
            }
        }
        for (int c = 0; c < columns; c++) result[names[c]] = data[c].ToArray();
        return result;
    }

    /// <summary>float16 rounding of a float32 value: half an ulp of the half (2⁻¹¹ relative), plus batch-to-batch float noise.</summary>
    static void AssertHalfOf(float reference, double actual, string what) =>
        Assert.True(Math.Abs(actual - reference) <= Math.Abs(reference) / 2048 + 2e-6, $"{what}: {actual} is not {reference} in float16");

    [SkippableFact]
    public void Webdataset_shards_embed_into_the_clip_retrieval_layout_that_numpy_loads()
    {
        var python = PythonWithNumpy();
        Skip.If(python is null, "python3 with numpy is not installed (Debian: apt-get install python3-numpy); CI installs it");
        var dir = TestUtil.TempDir();
        MakeShards(dir, 5, 5);
        var outDir = Path.Combine(dir, "out");
        var (code, _, err) = TestUtil.Cli("embed", "--model", "tiny-vit", "--weights", Weights, "--vocab", AppFixtures.Vocab,
            "--input", Path.Combine(dir, "shard-{00000..00001}.tar"), "--format", "clip-retrieval", "--output", outDir, "--batch-size", "4", "--quiet");
        output.WriteLine(err);
        Assert.True(code == 0, err);
        Assert.Contains("2 image(s) skipped", err);
        Assert.Contains("sample '000101' at byte", err); // the sample without an image, named with its shard and offset
        Assert.Contains("000100", err);

        var img = NumpyLoad(python!, Path.Combine(outDir, "img_emb", "img_emb_0.npy"));
        var txt = NumpyLoad(python!, Path.Combine(outDir, "text_emb", "text_emb_0.npy"));
        Assert.Equal([10L, 32L], img.Shape);
        Assert.Equal("float16", img.DType);
        Assert.Equal([10L, 32L], txt.Shape);
        var meta = ReadParquet(Path.Combine(outDir, "metadata", "metadata_0.parquet"));
        Assert.Equal(["image_path", "caption", "url", "width", "nsfw", "exif.iso"], meta.Keys);
        var samples = Samples();
        Assert.Equal(samples.Select(s => s.Key), meta["image_path"]);
        Assert.Equal(samples.Select(s => s.Caption), meta["caption"]);
        Assert.Equal(samples.Select((s, i) => (object?)(long)(100 + i)), meta["width"]);
        Assert.Equal(samples.Select((s, i) => (object?)(i / 10.0)), meta["nsfw"]);
        Assert.Equal("http://example.invalid/coffee.png", meta["url"][0]);

        // One row per image, equal (to float16 rounding) to the folder embedding of the same images.
        var reference = FolderEmbedding(dir);
        for (int r = 0; r < 10; r++)
        {
            var key = (string)meta["image_path"][r]!;
            for (int j = 0; j < 32; j++) AssertHalfOf(reference[key][j], img.Values[r * 32 + j], $"image row {r} ({key}) [{j}]");
        }
        // Text rows are the captions' embeddings.
        using var pipeline = AppFixtures.Pipeline("openai/tiny-vit");
        var expected = pipeline.EmbedTexts(samples.Select(s => s.Caption).ToList()).Data;
        for (int i = 0; i < expected.Length; i++) AssertHalfOf(expected[i], txt.Values[i], $"text value {i}");
        Assert.False(Directory.EnumerateFileSystemEntries(outDir, ".*").Any(), "work files were left in the output");
    }

    [Fact]
    public void Tasks_split_the_shard_list_into_disjoint_partitions_whose_union_is_the_whole()
    {
        var dir = TestUtil.TempDir();
        MakeShards(dir, 3, 4, 3);
        var input = Path.Combine(dir, "shard-{00000..00002}.tar");
        string[] Args(string outDir, params string[] more) =>
            ["embed", "--model", "tiny-vit", "--weights", Weights, "--vocab", AppFixtures.Vocab, "--input", input, "--format", "clip-retrieval", "--dtype", "float32", "--output", outDir, "--batch-size", "3", "--quiet", .. more];
        var whole = Path.Combine(dir, "whole");
        var (code, _, err) = TestUtil.Cli(Args(whole));
        Assert.True(code == 0, err);
        var split = Path.Combine(dir, "split");
        foreach (var task in new[] { "1/2", "0/2" })
        {
            (code, _, err) = TestUtil.Cli(Args(split, "--tasks", task));
            Assert.True(code == 0, err);
            Assert.Contains($"task {task}: ", err);
        }
        var wholeKeys = ReadParquet(Path.Combine(whole, "metadata", "metadata_0.parquet"))["image_path"];
        var k0 = ReadParquet(Path.Combine(split, "metadata", "metadata_0.parquet"))["image_path"];
        var k1 = ReadParquet(Path.Combine(split, "metadata", "metadata_1.parquet"))["image_path"];
        Assert.Equal(Samples().Select(s => s.Key), wholeKeys);
        Assert.Equal(wholeKeys, k0.Concat(k1));                  // union = whole, in order, so disjoint
        Assert.Equal(3, k0.Length);                              // task 0 of 2 takes shard 0 of 3
        var w = NpyFile.Read(Path.Combine(whole, "img_emb", "img_emb_0.npy"));
        var a = NpyFile.Read(Path.Combine(split, "img_emb", "img_emb_0.npy"));
        var b = NpyFile.Read(Path.Combine(split, "img_emb", "img_emb_1.npy"));
        Assert.Equal(NpyDType.Float32, w.DType);
        var joined = a.Values.Concat(b.Values).ToArray();
        Assert.Equal(w.Values.Length, joined.Length);
        for (int i = 0; i < joined.Length; i++) Assert.True(Math.Abs(w.Values[i] - joined[i]) < 1e-5, $"value {i}");

        // The ClipGen format names each task's file; a list input is split by rows.
        var list = Path.Combine(dir, "list.csv");
        var folder = Path.Combine(dir, "imgs");
        Directory.CreateDirectory(folder);
        var rows = Samples().Select(s => { File.WriteAllBytes(Path.Combine(folder, $"{s.Key}.{s.Ext}"), s.Data); return $"imgs/{s.Key}.{s.Ext},\"{s.Caption}\""; });
        File.WriteAllLines(list, ["filepath,title", .. rows]);
        var files = new List<string>();
        foreach (var task in new[] { "0/3", "1/3", "2/3" })
        {
            (code, _, err) = TestUtil.Cli("embed", "--model", "tiny-vit", "--weights", Weights, "--input", list, "--output", Path.Combine(dir, "l.safetensors"), "--tasks", task, "--quiet");
            Assert.True(code == 0, err);
            files.AddRange(EmbeddingIndex.Load(Path.Combine(dir, $"l.{task[0]}-of-3.safetensors")).Files);
        }
        Assert.Equal(Samples().Select(s => Path.Combine(dir, "imgs", $"{s.Key}.{s.Ext}")), files);
    }

    [Fact]
    public void A_damaged_shard_is_named_with_its_offset_and_the_other_shards_finish()
    {
        var dir = TestUtil.TempDir();
        var shards = MakeShards(dir, 5, 5);
        var third = WebDatasetReader.Read(shards[0]).ElementAt(2).Offset;
        var bytes = File.ReadAllBytes(shards[0]);
        File.WriteAllBytes(shards[0], bytes[..(int)(third + 2000)]); // shard 0 ends inside its third sample
        var outDir = Path.Combine(dir, "out");
        var (code, _, err) = TestUtil.Cli("embed", "--model", "tiny-vit", "--weights", Weights, "--vocab", AppFixtures.Vocab,
            "--input", Path.Combine(dir, "shard-*.tar"), "--format", "clip-retrieval", "--output", outDir, "--quiet");
        output.WriteLine(err);
        Assert.Equal(2, code);
        Assert.Matches(@"error: .*shard-00000\.tar: truncated tar \(the archive ends inside a member\) at byte \d+", err);
        Assert.Contains("1 shard(s) could not be read to the end", err);
        Assert.DoesNotContain("internal error", err);
        var keys = ReadParquet(Path.Combine(outDir, "metadata", "metadata_0.parquet"))["image_path"];
        Assert.Equal(["000000", "000001", "000005", "000006", "000007", "000008", "000009"], keys);
        Assert.Equal(7, NpyFile.Read(Path.Combine(outDir, "img_emb", "img_emb_0.npy")).Rows);
    }

    [Fact]
    public void A_second_run_on_the_same_output_fails_at_once()
    {
        var dir = TestUtil.TempDir();
        MakeShards(dir, 2);
        var outDir = Path.Combine(dir, "out");
        Directory.CreateDirectory(outDir);
        // Another process holds the lock of partition 0 (an advisory lock: a separate open file, as another process has).
        using (new FileStream(Path.Combine(outDir, ".embed-0.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            var clock = Stopwatch.StartNew();
            var (code, _, err) = TestUtil.Cli("embed", "--model", "tiny-vit", "--weights", Weights, "--input", Path.Combine(dir, "shard-00000.tar"),
                "--format", "clip-retrieval", "--output", outDir, "--quiet");
            Assert.Equal(2, code);
            Assert.Contains("is being written by another embedding run", Assert.Single(err.TrimEnd().Split('\n')));
            Assert.False(Directory.Exists(Path.Combine(outDir, ".parts-0")));
            // A different partition of the same folder is not blocked.
            (code, _, err) = TestUtil.Cli("embed", "--model", "tiny-vit", "--weights", Weights, "--vocab", AppFixtures.Vocab, "--input", Path.Combine(dir, "shard-00000.tar"),
                "--format", "clip-retrieval", "--output", outDir, "--tasks", "1/2", "--quiet");
            Assert.True(code == 0, err);
        }
        // Two real processes on one ClipGen-format output: exactly one writes it, the other stops with the message.
        var spec = Path.Combine(AppContext.BaseDirectory, "specs", "tiny-vit.yaml");
        var target = Path.Combine(dir, "race.safetensors");
        var folder = Path.Combine(dir, "imgs");
        Directory.CreateDirectory(folder);
        for (int i = 0; i < 200; i++) File.Copy(Fixtures.Path_("preprocess", "images", "coffee.png"), Path.Combine(folder, $"{i:D4}.png"));
        var runs = Enumerable.Range(0, 2).Select(_ =>
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "ClipGen.Cli.dll"), "embed", "--model", spec, "--weights", Weights, "--input", folder, "--output", target, "--batch-size", "8", "--quiet" })
                psi.ArgumentList.Add(a);
            return Process.Start(psi)!;
        }).ToList();
        var results = runs.Select(p => { var e = p.StandardError.ReadToEndAsync(); p.StandardOutput.ReadToEnd(); p.WaitForExit(); return (p.ExitCode, Err: e.Result); }).ToList();
        foreach (var r in results) output.WriteLine($"exit {r.ExitCode}: {r.Err.Trim()}");
        Assert.Contains(results, r => r.ExitCode == 0);
        if (results.All(r => r.ExitCode == 0)) output.WriteLine("the runs did not overlap (one finished before the other started)");
        else Assert.Contains(results, r => r.ExitCode == 2 && r.Err.Contains("is being written by another embedding run"));
        Assert.Equal(200, EmbeddingIndex.Load(target).Count);
    }

    [Fact]
    public void An_interrupted_shard_run_resumes_to_the_same_bytes()
    {
        var dir = TestUtil.TempDir();
        var shards = MakeShards(dir, 4, 6);
        using var pipeline = AppFixtures.Pipeline("openai/tiny-vit");
        FolderEmbedderOptions Options(CancellationToken token = default, IProgress<EmbedProgress>? progress = null) => new()
        {
            BatchSize = 3, Format = EmbedFormat.ClipRetrieval, NpyDType = NpyDType.Float32, CancellationToken = token, Progress = progress,
        };
        var sources = shards.Select(EmbedSource.FromShard).ToList();
        var full = Path.Combine(dir, "full");
        var first = FolderEmbedder.RunSources(pipeline, sources, full, Options());
        Assert.Equal(10, first.Rows);
        Assert.Equal(2, first.Skipped.Count);

        var resumed = Path.Combine(dir, "resumed");
        using var cts = new CancellationTokenSource();
        int reports = 0;
        var progress = new SyncProgress(_ => { if (++reports == 3) cts.Cancel(); });
        Assert.Throws<OperationCanceledException>(() => FolderEmbedder.RunSources(pipeline, sources, resumed, Options(cts.Token, progress)));
        Assert.True(Directory.Exists(Path.Combine(resumed, ".parts-0")));
        Assert.False(File.Exists(Path.Combine(resumed, "img_emb", "img_emb_0.npy")));
        var notes = new ListLogger();
        var second = FolderEmbedder.RunSources(pipeline, sources, resumed, Options() with { Logger = notes });
        Assert.Equal(7, second.Resumed); // 3 batches: shard 0's [3, 1], shard 1's first [3]
        Assert.Contains(notes.Entries, n => n.Level == Microsoft.Extensions.Logging.LogLevel.Information && n.Message.StartsWith("resuming", StringComparison.Ordinal));
        foreach (var f in new[] { "img_emb/img_emb_0.npy", "text_emb/text_emb_0.npy" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(full, f)), File.ReadAllBytes(Path.Combine(resumed, f)));
        Assert.Equal(ReadParquet(Path.Combine(full, "metadata", "metadata_0.parquet")), ReadParquet(Path.Combine(resumed, "metadata", "metadata_0.parquet")));
        Assert.Equal(first.Skipped, second.Skipped);
        Assert.False(Directory.Exists(Path.Combine(resumed, ".parts-0")));
    }

    [Fact]
    public void A_batch_whose_images_are_all_unreadable_is_skipped_and_resume_works()
    {
        // Defect 8: six good PNGs and an empty zzz_bad.jpg with batch size 3: the last batch has no readable image.
        var dir = TestUtil.TempDir();
        var folder = Path.Combine(dir, "imgs");
        Directory.CreateDirectory(folder);
        for (int i = 0; i < 6; i++)
        {
            using var bmp = new SKBitmap(20, 20);
            bmp.Erase(new SKColor((byte)(40 * i), 100, 200));
            using var png = bmp.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(Path.Combine(folder, $"img{i}.png"), png.ToArray());
        }
        File.WriteAllBytes(Path.Combine(folder, "zzz_bad.jpg"), []);
        var target = Path.Combine(dir, "e.safetensors");
        var (code, _, err) = TestUtil.Cli("embed", "--model", "tiny-vit", "--weights", Weights, "--images", folder, "--output", target, "--batch-size", "3", "--quiet");
        Assert.True(code == 0, err);
        Assert.Contains("1 image(s) skipped", err);
        Assert.Contains("zzz_bad.jpg", err);
        Assert.Equal(6, EmbeddingIndex.Load(target).Count);

        // Interrupted after the first batch, then resumed: the same bytes.
        using var pipeline = AppFixtures.Pipeline("openai/tiny-vit");
        var files = ImageFiles.Find(folder);
        var resumedPath = Path.Combine(dir, "r.safetensors");
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(_ => cts.Cancel());
        Assert.Throws<OperationCanceledException>(() => FolderEmbedder.Run(pipeline, files, resumedPath, new FolderEmbedderOptions { BatchSize = 3, CancellationToken = cts.Token, Progress = progress }));
        var r = FolderEmbedder.Run(pipeline, files, resumedPath, new FolderEmbedderOptions { BatchSize = 3 });
        Assert.Equal(3, r.Resumed);
        Assert.Equal("zzz_bad.jpg", Path.GetFileName(Assert.Single(r.Skipped).Path));
        Assert.Equal(File.ReadAllBytes(target), File.ReadAllBytes(resumedPath));
    }

    /// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
    sealed class SyncProgress(Action<EmbedProgress> report) : IProgress<EmbedProgress>
    {
        public void Report(EmbedProgress value) => report(value);
    }
}
