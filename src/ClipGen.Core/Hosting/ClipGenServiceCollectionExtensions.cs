using ClipGen.Applications;
using ClipGen.Backends;
using ClipGen.Onnx;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClipGen.Hosting;

/// <summary>
/// What <see cref="ClipGenServiceCollectionExtensions.AddClipGen(IServiceCollection, Action{ClipGenOptions})"/> loads, bound
/// from configuration as usual (<c>"ClipGen": { "Model": "ViT-B-32", "Pretrained": "laion2b_s34b_b79k", "Backend": "Onnx" }</c>).
/// Give <see cref="Weights"/> (a checkpoint file or folder, or a ClipGen ONNX export folder) or <see cref="Pretrained"/>.
/// </summary>
public sealed class ClipGenOptions
{
    /// <summary>A built-in spec's name or alias, or a spec.yaml path; null infers the spec from <see cref="Weights"/> (or reads it from an ONNX export).</summary>
    public string? Model { get; set; }

    /// <summary>
    /// A checkpoint (any format ClipGen reads; needs the <c>ClipGen</c> package, which has TorchSharp) or a folder exported
    /// by ClipGen to ONNX (<c>image.onnx</c> + <c>text.onnx</c>; the <c>ClipGen.Core</c> package alone runs it).
    /// </summary>
    public string? Weights { get; set; }

    /// <summary>open_clip's pretrained tag of <see cref="Model"/>'s published weights (downloaded into the cache, verified); needs the <c>ClipGen</c> package.</summary>
    public string? Pretrained { get; set; }

    /// <summary>The tokenizer's vocabulary file or folder; null looks beside the weights, in $CLIPGEN_VOCAB and in the download cache.</summary>
    public string? Vocabulary { get; set; }

    /// <summary>The engine for checkpoint weights: <see cref="BackendKind.Torch"/> (default) or <see cref="BackendKind.Onnx"/>; an ONNX export always runs on ONNX Runtime.</summary>
    public BackendKind Backend { get; set; } = BackendKind.Torch;

    /// <summary><see cref="OnnxPrecision.Int8"/> quantizes on ONNX Runtime (see docs/onnx.md for its error bound).</summary>
    public OnnxPrecision Precision { get; set; } = OnnxPrecision.Float32;

    /// <summary>Intra-op threads of the backend; 0 leaves the engine's default.</summary>
    public int Threads { get; set; }

    /// <summary>Items per forward pass.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Where published weights are cached; null is $CLIPGEN_CACHE, else the XDG cache folder.</summary>
    public string? CacheDirectory { get; set; }

    /// <summary>A mirror that serves the download URLs' paths; null downloads from the published URLs.</summary>
    public Uri? DownloadUrlBase { get; set; }

    /// <summary>The options as they reach the loaders.</summary>
    public ClipPipelineOptions ToPipelineOptions(ILogger? logger) => new()
    {
        Backend = Precision == OnnxPrecision.Int8 ? BackendKind.Onnx : Backend,
        BackendOptions = new ClipBackendOptions
        {
            Precision = Precision,
            TorchThreads = Backend == BackendKind.Torch ? Threads : 0,
            Session = Threads > 0 ? new OnnxClipSessionOptions { IntraOpNumThreads = Threads } : new OnnxClipSessionOptions(),
        },
        VocabularyPath = Vocabulary,
        CacheDirectory = CacheDirectory,
        DownloadUrlBase = DownloadUrlBase,
        Logger = logger,
    };

    internal string? Problem()
    {
        if (string.IsNullOrWhiteSpace(Weights) && string.IsNullOrWhiteSpace(Pretrained))
            return "ClipGen needs Weights (a checkpoint or an ONNX export folder) or Model and Pretrained (a published tag)";
        if (!string.IsNullOrWhiteSpace(Pretrained) && string.IsNullOrWhiteSpace(Model))
            return $"ClipGen: Pretrained '{Pretrained}' needs a Model to look it up in";
        if (BatchSize <= 0) return $"ClipGen: BatchSize must be positive, not {BatchSize}";
        if (Threads < 0) return $"ClipGen: Threads must be 0 (the engine's default) or more, not {Threads}";
        return null;
    }
}

/// <summary>Says what is missing or out of range in <see cref="ClipGenOptions"/>, when the options are first read.</summary>
public sealed class ClipGenOptionsValidator : IValidateOptions<ClipGenOptions>
{
    public ValidateOptionsResult Validate(string? name, ClipGenOptions options) =>
        options.Problem() is { } why ? ValidateOptionsResult.Fail(why) : ValidateOptionsResult.Success;
}

/// <summary>Loads the <see cref="ClipPipeline"/> that <see cref="ClipGenOptions"/> describe; the DI registration calls it once.</summary>
public interface IClipPipelineLoader
{
    /// <summary>Loads the pipeline.</summary>
    Task<ClipPipeline> LoadAsync(ClipGenOptions options, ILogger? logger, CancellationToken cancellationToken);
}

/// <summary>
/// The loader <see cref="ClipGenServiceCollectionExtensions.AddClipGen(IServiceCollection, Action{ClipGenOptions})"/> registers:
/// ClipGen ONNX exports open here; checkpoints and published tags go to the <c>ClipGen</c> package's TorchSharp loader when that
/// assembly is present (it is found by name, so that this package never references TorchSharp).
/// </summary>
public sealed class DefaultClipPipelineLoader : IClipPipelineLoader
{
    /// <summary>The type in the <c>ClipGen</c> assembly that loads checkpoints (an <see cref="IClipPipelineLoader"/> with a public parameterless constructor).</summary>
    public const string TorchLoaderTypeName = "ClipGen.Applications.TorchClipPipelineLoader, ClipGen";

    public async Task<ClipPipeline> LoadAsync(ClipGenOptions options, ILogger? logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var pipelineOptions = options.ToPipelineOptions(logger);
        ClipPipeline pipeline;
        if (string.IsNullOrWhiteSpace(options.Pretrained) && options.Weights is { } weights && IsOnnxExport(weights))
        {
            logger?.LogInformation("{Message}", $"opening the ONNX export {weights}");
            pipeline = await Task.Run(() => ClipPipeline.Open(weights, pipelineOptions), cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var type = Type.GetType(TorchLoaderTypeName, throwOnError: false)
                ?? throw new ClipGenException(
                    $"loading {(string.IsNullOrWhiteSpace(options.Pretrained) ? $"the checkpoint '{options.Weights}'" : $"'{options.Model}' '{options.Pretrained}'")} needs the ClipGen package (TorchSharp); " +
                    "ClipGen.Core alone runs models exported to ONNX (a folder with image.onnx and text.onnx)");
            var torch = (IClipPipelineLoader)Activator.CreateInstance(type)!;
            pipeline = await torch.LoadAsync(options, logger, cancellationToken).ConfigureAwait(false);
        }
        pipeline.BatchSize = options.BatchSize;
        return pipeline;
    }

    /// <summary>A folder that holds an export's <see cref="ClipOnnxNames.ImageFileName"/> and <see cref="ClipOnnxNames.TextFileName"/>.</summary>
    public static bool IsOnnxExport(string path) =>
        Directory.Exists(path) && File.Exists(Path.Combine(path, ClipOnnxNames.ImageFileName)) && File.Exists(Path.Combine(path, ClipOnnxNames.TextFileName));
}

/// <summary>The pipeline, loaded on first use and shared; disposed with the service provider.</summary>
public sealed class ClipPipelineHolder : IDisposable
{
    readonly Lazy<ClipPipeline> _pipeline;

    public ClipPipelineHolder(IOptions<ClipGenOptions> options, IClipPipelineLoader loader, ILoggerFactory? loggerFactory = null)
    {
        var o = options.Value;
        var logger = loggerFactory?.CreateLogger("ClipGen");
        _pipeline = new Lazy<ClipPipeline>(() => loader.LoadAsync(o, logger, CancellationToken.None).GetAwaiter().GetResult(), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The loaded pipeline (loads it on the first call).</summary>
    public ClipPipeline Pipeline => _pipeline.Value;

    public void Dispose()
    {
        if (_pipeline.IsValueCreated) _pipeline.Value.Dispose();
    }
}

/// <summary><c>services.AddClipGen(…)</c>: the pipeline and the two <c>Microsoft.Extensions.AI</c> embedding generators.</summary>
public static class ClipGenServiceCollectionExtensions
{
    /// <summary>
    /// Registers, as singletons: <see cref="ClipPipeline"/> (loaded on first use, as <see cref="ClipGenOptions"/> say),
    /// <see cref="IEmbeddingGenerator{String, Embedding}"/> of texts (<see cref="ClipTextEmbeddingGenerator"/>) and
    /// <see cref="IEmbeddingGenerator{DataContent, Embedding}"/> of images (<see cref="ClipImageEmbeddingGenerator"/>), and
    /// <see cref="IClipPipelineLoader"/> unless one is registered already. The options are validated when first read.
    /// </summary>
    public static IServiceCollection AddClipGen(this IServiceCollection services, Action<ClipGenOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<ClipGenOptions>().Configure(configure);
        return AddCore(services);
    }

    /// <summary>As <see cref="AddClipGen(IServiceCollection, Action{ClipGenOptions})"/>, with the options bound from <paramref name="configuration"/> (e.g. the "ClipGen" section).</summary>
    public static IServiceCollection AddClipGen(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<ClipGenOptions>().Bind(configuration);
        return AddCore(services);
    }

    static IServiceCollection AddCore(IServiceCollection services)
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ClipGenOptions>, ClipGenOptionsValidator>());
        services.TryAddSingleton<IClipPipelineLoader, DefaultClipPipelineLoader>();
        services.TryAddSingleton<ClipPipelineHolder>();
        services.TryAddSingleton(sp => sp.GetRequiredService<ClipPipelineHolder>().Pipeline);
        services.TryAddSingleton<IEmbeddingGenerator<string, Embedding<float>>>(sp => new ClipTextEmbeddingGenerator(sp.GetRequiredService<ClipPipeline>()));
        services.TryAddSingleton<IEmbeddingGenerator<DataContent, Embedding<float>>>(sp => new ClipImageEmbeddingGenerator(sp.GetRequiredService<ClipPipeline>()));
        return services;
    }
}
