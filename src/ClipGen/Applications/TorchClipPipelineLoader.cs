using ClipGen.Hosting;
using Microsoft.Extensions.Logging;

namespace ClipGen.Applications;

/// <summary>
/// Loads checkpoints and published tags for <see cref="ClipGenServiceCollectionExtensions.AddClipGen(Microsoft.Extensions.DependencyInjection.IServiceCollection, Action{ClipGenOptions})"/>;
/// <see cref="DefaultClipPipelineLoader"/> finds it by name (<see cref="DefaultClipPipelineLoader.TorchLoaderTypeName"/>) when this assembly is present.
/// </summary>
public sealed class TorchClipPipelineLoader : IClipPipelineLoader
{
    public Task<ClipPipeline> LoadAsync(ClipGenOptions options, ILogger? logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var pipelineOptions = options.ToPipelineOptions(logger);
        return string.IsNullOrWhiteSpace(options.Pretrained)
            ? ClipPipeline.LoadAsync(options.Model, options.Weights!, pipelineOptions, cancellationToken)
            : ClipPipeline.LoadPretrainedAsync(options.Model!, options.Pretrained, pipelineOptions, null, cancellationToken);
    }
}
