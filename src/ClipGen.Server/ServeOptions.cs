using ClipGen.Backends;

namespace ClipGen.Server;

/// <summary>What <see cref="ClipServer"/> serves and the limits it keeps. Every limit has a default fit for one small machine.</summary>
public sealed record ServeOptions
{
    /// <summary>A model name, alias or spec.yaml; null infers the spec from the checkpoint.</summary>
    public string? Model { get; init; }

    /// <summary>The checkpoint (any format ClipGen reads). Required unless a loaded pipeline is given to <see cref="ClipServer.Build(ServeOptions, Applications.ClipPipeline?)"/>.</summary>
    public string? Weights { get; init; }

    /// <summary>The tokenizer's vocabulary file or folder; null looks where <see cref="Applications.Vocabulary.Resolve"/> looks.</summary>
    public string? Vocabulary { get; init; }

    /// <summary>An embedding index (<c>clipgen embed</c>'s safetensors file) for /v1/search and the page; null serves no search.</summary>
    public string? Index { get; init; }

    /// <summary>TorchSharp or ONNX Runtime.</summary>
    public BackendKind Backend { get; init; } = BackendKind.Torch;

    /// <summary>The backend's threads, concurrent runs and precision; null is the engines' defaults.</summary>
    public ClipBackendOptions? BackendOptions { get; init; }

    /// <summary>Addresses to listen on (Kestrel URLs; port 0 picks a free port).</summary>
    public IReadOnlyList<string> Urls { get; init; } = ["http://127.0.0.1:8080"];

    /// <summary>Inputs (texts plus images) run in one forward pass at most; 1 turns dynamic batching off.</summary>
    public int MaxBatch { get; init; } = 32;

    /// <summary>How long the first request of a batch waits for others to join it, in milliseconds (0: take only what is queued).</summary>
    public int MaxWaitMs { get; init; } = 5;

    /// <summary>Requests waiting for the model at most; one more is answered 503 with Retry-After.</summary>
    public int QueueCapacity { get; init; } = 256;

    /// <summary>Largest request body in bytes (Kestrel's limit; a larger one is answered 413).</summary>
    public long MaxBodyBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>Strings in one /v1/embeddings request, images in one /v1/classify request.</summary>
    public int MaxInputs { get; init; } = 64;

    /// <summary>Labels in one /v1/classify request.</summary>
    public int MaxLabels { get; init; } = 64;

    /// <summary>Templates in one /v1/classify request.</summary>
    public int MaxTemplates { get; init; } = 16;

    /// <summary>Largest k of /v1/search.</summary>
    public int MaxK { get; init; } = 1000;

    /// <summary>Longest side of a thumbnail served at /images/{row}, in pixels.</summary>
    public int ThumbnailSize { get; init; } = 256;

    /// <summary>How long shutdown waits for requests in flight to finish.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>No console log (tests, benchmarks).</summary>
    public bool Quiet { get; init; }

    /// <summary>Seconds a client is told to wait (Retry-After) when the queue is full.</summary>
    public int RetryAfterSeconds { get; init; } = 1;

    /// <summary>Throws a <see cref="ClipGenException"/> naming the first limit out of range.</summary>
    public void Validate()
    {
        static void Range(string name, long value, long min, long max)
        {
            if (value < min || value > max) throw new ClipGenException($"{name} must be from {min} to {max}, not {value}");
        }
        Range("max batch", MaxBatch, 1, 4096);
        Range("max wait (ms)", MaxWaitMs, 0, 10_000);
        Range("queue capacity", QueueCapacity, 1, 1_000_000);
        Range("max body bytes", MaxBodyBytes, 1024, 1L << 31);
        Range("max inputs", MaxInputs, 1, 4096);
        Range("max labels", MaxLabels, 1, 4096);
        Range("max templates", MaxTemplates, 1, 256);
        Range("max k", MaxK, 1, 1_000_000);
        Range("thumbnail size", ThumbnailSize, 16, 4096);
        Range("retry-after seconds", RetryAfterSeconds, 1, 3600);
        if (Urls.Count == 0) throw new ClipGenException("no URL to listen on");
    }
}
