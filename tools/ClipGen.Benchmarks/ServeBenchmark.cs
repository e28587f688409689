using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using ClipGen.Applications;
using ClipGen.Backends;
using ClipGen.Modeling;
using ClipGen.Server;
using SkiaSharp;

namespace ClipGen.Benchmarks;

/// <summary>
/// <c>clipgen serve</c> under load: concurrent clients on 127.0.0.1 send /v1/embeddings requests (texts and JPEG data URLs),
/// with dynamic batching (max batch 32) and without (max batch 1). Reports throughput and p50/p99 latency, checks that every
/// request was answered 200 and that each embedding equals the one the same request got when sent alone. Random weights.
/// <code>
/// dotnet run -c Release --project tools/ClipGen.Benchmarks -- serve [--models demo-tiny,ViT-B-32] [--backend onnx] [--requests 128] [--clients 32] [--batches 1,32] [--wait-ms 5]
/// </code>
/// </summary>
public static class ServeBenchmark
{
    public static int Run(string[] args)
    {
        string Opt(string name, string fallback) => BenchUtil.Option(args, name, fallback);
        var models = Opt("models", "demo-tiny,ViT-B-32").Split(',');
        var backend = ClipBackends.Parse(Opt("backend", "onnx"));
        int requests = int.Parse(Opt("requests", "128"), CultureInfo.InvariantCulture);
        int clients = int.Parse(Opt("clients", "32"), CultureInfo.InvariantCulture);
        var batches = Opt("batches", "1,32").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        int waitMs = int.Parse(Opt("wait-ms", "5"), CultureInfo.InvariantCulture);
        var vocab = Opt("vocab", EmbedBenchmark.FindVocab());
        Console.WriteLine($"serve benchmark: {requests} requests (half a caption, half a 320×240 JPEG data URL) from {clients} concurrent clients on 127.0.0.1, " +
            $"{backend}, {Environment.ProcessorCount} cores; load average {BenchUtil.LoadAverage()}");
        foreach (var name in models)
            RunModel(name, backend, vocab, requests, clients, batches, waitMs).GetAwaiter().GetResult();
        Console.WriteLine($"load average at the end {BenchUtil.LoadAverage()}");
        return 0;
    }

    static async Task RunModel(string name, BackendKind backend, string? vocab, int requests, int clients, int[] batches, int waitMs)
    {
        using var pipeline = ClipPipeline.FromModel(ClipModelFactory.Create(name), null, vocab, backend);
        var bodies = MakeRequests(requests);
        float[][]? sequential = null;
        foreach (var maxBatch in new[] { 1 }.Concat(batches))
        {
            var options = new ServeOptions { Urls = ["http://127.0.0.1:0"], Quiet = true, MaxBatch = maxBatch, MaxWaitMs = waitMs, QueueCapacity = Math.Max(256, requests) };
            await using var server = ClipServer.Build(options, pipeline);
            await server.StartAsync();
            using var client = new HttpClient { BaseAddress = server.Addresses.Single(), Timeout = TimeSpan.FromMinutes(10) };
            await Send(client, bodies[0]); // warm-up: first allocations, graph optimisation
            if (sequential is null)
            {
                // The reference: each request alone, one after another.
                sequential = new float[requests][];
                var latencies = new double[requests];
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < requests; i++)
                {
                    var t = Stopwatch.GetTimestamp();
                    sequential[i] = await Send(client, bodies[i]);
                    latencies[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                }
                Report(name, "sequential, 1 client", requests, clock.Elapsed.TotalSeconds, latencies, 0, requests, server.Metrics);
                continue;
            }
            var results = new float[requests][];
            var lat = new double[requests];
            int next = -1, answered = 0;
            var wall = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < requests)
                {
                    var t = Stopwatch.GetTimestamp();
                    results[i] = await Send(client, bodies[i]);
                    lat[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                    Interlocked.Increment(ref answered);
                }
            }));
            double seconds = wall.Elapsed.TotalSeconds;
            double maxDiff = 0;
            for (int i = 0; i < requests; i++)
                for (int j = 0; j < results[i].Length; j++) maxDiff = Math.Max(maxDiff, Math.Abs(results[i][j] - sequential[i][j]));
            Report(name, $"{clients} clients, max batch {maxBatch}", requests, seconds, lat, maxDiff, answered, server.Metrics);
            if (answered != requests || maxDiff > 1e-4) throw new InvalidOperationException($"{name}: {answered} of {requests} answered, max |diff| {maxDiff}");
        }
    }

    static void Report(string name, string mode, int requests, double seconds, double[] latencies, double maxDiff, int answered, ServerMetrics metrics)
    {
        Array.Sort(latencies);
        double P(double q) => latencies[Math.Min(latencies.Length - 1, (int)Math.Ceiling(q * latencies.Length) - 1)];
        var text = metrics.Render();
        double sum = Sample(text, "clipgen_batch_size_sum"), count = Sample(text, "clipgen_batch_size_count");
        Console.WriteLine(FormattableString.Invariant(
            $"  {name,-10} {mode,-26} {requests / seconds,7:F1} req/s  p50 {P(0.5),8:F1} ms  p99 {P(0.99),8:F1} ms  mean batch {(count > 0 ? sum / count : 0),5:F1}  answered {answered}/{requests}  max |diff| vs sequential {maxDiff:E1}"));
    }

    static double Sample(string text, string name)
    {
        foreach (var line in text.Split('\n'))
            if (line.StartsWith(name + " ", StringComparison.Ordinal)) return double.Parse(line[(name.Length + 1)..], CultureInfo.InvariantCulture);
        return 0;
    }

    static async Task<float[]> Send(HttpClient client, object body)
    {
        using var response = await client.PostAsJsonAsync("/v1/embeddings", body);
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"{(int)response.StatusCode}: {text}");
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle()).ToArray();
    }

    /// <summary>Half captions, half JPEG data URLs of drawn scenes (seeded).</summary>
    static object[] MakeRequests(int count)
    {
        var rng = new Random(7);
        string[] colours = ["red", "green", "blue", "yellow", "black", "white"];
        string[] things = ["car", "dog", "house", "tree", "boat", "circle"];
        var result = new object[count];
        for (int i = 0; i < count; i++)
        {
            if (i % 2 == 0)
            {
                result[i] = new { input = $"a photo of a {colours[rng.Next(colours.Length)]} {things[rng.Next(things.Length)]} number {i}" };
                continue;
            }
            using var bmp = new SKBitmap(320, 240);
            using (var canvas = new SKCanvas(bmp))
            {
                canvas.Clear(new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)));
                using var paint = new SKPaint { Color = new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)) };
                for (int k = 0; k < 8; k++) canvas.DrawCircle(rng.Next(320), rng.Next(240), 5 + rng.Next(40), paint);
            }
            using var jpeg = bmp.Encode(SKEncodedImageFormat.Jpeg, 90);
            result[i] = new { input = "data:image/jpeg;base64," + Convert.ToBase64String(jpeg.ToArray()) };
        }
        return result;
    }
}
