using System.Diagnostics;
using System.Formats.Tar;
using System.Globalization;
using ClipGen.Applications;
using ClipGen.Backends;
using ClipGen.Datasets;
using ClipGen.Modeling;
using SkiaSharp;

namespace ClipGen.Benchmarks;

/// <summary>
/// End-to-end <c>clipgen embed</c> throughput over WebDataset shards into clip-retrieval's layout: tar reading, JPEG
/// decoding and preprocessing, the image tower, the caption tower, and the writes — the per-node rate that
/// docs/scale.md multiplies out. Random weights (the rate does not depend on them).
/// <code>
/// dotnet run -c Release --project tools/ClipGen.Benchmarks -- embed [--models demo-tiny,ViT-B-32] [--backend onnx] [--images 256] [--batch 32] [--captions 1]
/// </code>
/// </summary>
public static class EmbedBenchmark
{
    public static int Run(string[] args)
    {
        string Opt(string name, string fallback) => BenchUtil.Option(args, name, fallback);
        var models = Opt("models", "demo-tiny,ViT-B-32").Split(',');
        var backend = ClipBackends.Parse(Opt("backend", "onnx"));
        int images = int.Parse(Opt("images", "256"), CultureInfo.InvariantCulture);
        int batch = int.Parse(Opt("batch", "32"), CultureInfo.InvariantCulture);
        bool captions = Opt("captions", "1") == "1";
        var vocab = Opt("vocab", FindVocab());
        var dir = Directory.CreateTempSubdirectory("clipgen-embed-bench-").FullName;
        try
        {
            var pattern = MakeShards(dir, images, captions);
            Console.WriteLine($"embed benchmark: {images} JPEGs (400×300, q90) in 4 shards{(captions ? " with captions" : "")}, batch {batch}, {backend}, " +
                $"{Environment.ProcessorCount} cores; load average {BenchUtil.LoadAverage()}");
            foreach (var name in models)
            {
                using var pipeline = ClipPipeline.FromModel(ClipModelFactory.Create(name), null, vocab, backend);
                pipeline.BatchSize = batch;
                var sources = BraceExpansion.Expand(pattern).Select(EmbedSource.FromShard).ToList();
                // One small warm-up run (graph optimisation, first allocations), then the timed one.
                FolderEmbedder.RunSources(pipeline, sources.Take(1).ToList(), Path.Combine(dir, "warm"), new FolderEmbedderOptions { BatchSize = batch, Format = EmbedFormat.ClipRetrieval });
                var clock = Stopwatch.StartNew();
                var result = FolderEmbedder.RunSources(pipeline, sources, Path.Combine(dir, name), new FolderEmbedderOptions { BatchSize = batch, Format = EmbedFormat.ClipRetrieval });
                double seconds = clock.Elapsed.TotalSeconds;
                Console.WriteLine(FormattableString.Invariant(
                    $"  {name}: {result.Rows} images{(result.HasText ? " + captions" : "")} in {seconds:F1} s = {result.Rows / seconds:F1} images/s per node"));
            }
            Console.WriteLine($"load average at the end {BenchUtil.LoadAverage()}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        return 0;
    }

    /// <summary>Four shards of drawn scenes (gradients, shapes, noise) as JPEG with short captions.</summary>
    static string MakeShards(string dir, int images, bool captions)
    {
        var rng = new Random(1);
        for (int s = 0; s < 4; s++)
        {
            using var fs = File.Create(Path.Combine(dir, $"bench-{s:D5}.tar"));
            using var tar = new TarWriter(fs, TarEntryFormat.Pax);
            for (int i = s * images / 4; i < (s + 1) * images / 4; i++)
            {
                using var bmp = new SKBitmap(400, 300);
                using (var canvas = new SKCanvas(bmp))
                {
                    using var shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(400, 300),
                        [new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)), new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256))], SKShaderTileMode.Clamp);
                    using var paint = new SKPaint { Shader = shader };
                    canvas.DrawRect(0, 0, 400, 300, paint);
                    using var dot = new SKPaint { Color = new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)) };
                    for (int k = 0; k < 20; k++) canvas.DrawCircle(rng.Next(400), rng.Next(300), 5 + rng.Next(40), dot);
                }
                using var jpeg = bmp.Encode(SKEncodedImageFormat.Jpeg, 90);
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, $"{i:D8}.jpg") { DataStream = new MemoryStream(jpeg.ToArray()) });
                if (captions)
                    tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, $"{i:D8}.txt") { DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes($"a picture of twenty circles, number {i}")) });
            }
        }
        return Path.Combine(dir, "bench-{00000..00003}.tar");
    }

    /// <summary>The BPE vocabulary for clip_bpe specs: $CLIPGEN_VOCAB, else the shared fixtures' copy.</summary>
    internal static string FindVocab()
    {
        if (Environment.GetEnvironmentVariable("CLIPGEN_VOCAB") is { Length: > 0 } v) return v;
        var fixtures = Environment.GetEnvironmentVariable("CLIPGEN_FIXTURES") ?? Path.Combine("..", "shared", "fixtures");
        return Path.GetFullPath(Path.Combine(fixtures, "vocab", "bpe_simple_vocab_16e6.txt.gz"));
    }
}
