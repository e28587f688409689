using ClipGen.Applications;
using ClipGen.Modeling;
using Microsoft.Extensions.AI;
using Xunit;
using static TorchSharp.torch;

namespace ClipGen.Tests.Applications;

public class EmbeddingGeneratorTests
{
    [Fact]
    public async Task Text_generator_through_the_abstraction_gives_normalised_reference_features()
    {
        using var pipeline = AppFixtures.Pipeline("openai/tiny-vit");
        var captions = AppFixtures.Captions("openai/tiny-vit");
        using IEmbeddingGenerator<string, Embedding<float>> generator = new ClipTextEmbeddingGenerator(pipeline);

        var metadata = generator.GetService<EmbeddingGeneratorMetadata>();
        Assert.NotNull(metadata);
        Assert.Equal("ClipGen", metadata.ProviderName);
        Assert.Equal("tiny-vit", metadata.DefaultModelId);
        Assert.Equal(32, metadata.DefaultModelDimensions);
        Assert.Same(pipeline, generator.GetService<ClipPipeline>());
        Assert.Null(generator.GetService<EmbeddingGeneratorMetadata>("some key"));

        var embeddings = await generator.GenerateAsync(captions);
        Assert.Equal(captions.Length, embeddings.Count);
        using var outputs = TestUtil.Read(Fixtures.Path_("reference", "openai", "tiny-vit", "outputs.safetensors"));
        using var expected = ClipPipeline.Normalize(outputs.Tensors["text_features"]);
        using var actual = stack(embeddings.Select(e => tensor(e.Vector.ToArray())).ToArray());
        TestUtil.AssertClose(expected, actual, "text embeddings");
        Assert.All(embeddings, e => { Assert.Equal(32, e.Dimensions); Assert.Equal("tiny-vit", e.ModelId); });

        // One value at a time (the abstraction's extension) gives the same vector (up to batch-size rounding).
        var single = await generator.GenerateVectorAsync(captions[1]);
        Assert.True(single.ToArray().Zip(embeddings[1].Vector.ToArray(), (a, b) => Math.Abs(a - b)).Max() < 1e-6);

        await Assert.ThrowsAsync<NotSupportedException>(() => generator.GenerateAsync(captions, new EmbeddingGenerationOptions { Dimensions = 64 }));
    }

    [Fact]
    public async Task Image_generator_takes_encoded_images_and_agrees_with_the_pipeline()
    {
        using var pipeline = AppFixtures.Pipeline("openai/tiny-rn");
        using IEmbeddingGenerator<DataContent, Embedding<float>> generator = new ClipImageEmbeddingGenerator(pipeline);
        var files = AppFixtures.Images.Take(3).ToArray();
        var inputs = new List<DataContent>();
        foreach (var f in files) inputs.Add(await DataContent.LoadFromAsync(f));
        var embeddings = await generator.GenerateAsync(inputs);
        using var expected = pipeline.EmbedImages(files).ToTensor();
        using var actual = stack(embeddings.Select(e => tensor(e.Vector.ToArray())).ToArray());
        TestUtil.AssertClose(expected, actual, "image embeddings", 1e-6);
        Assert.Equal(32, generator.GetService<EmbeddingGeneratorMetadata>()!.DefaultModelDimensions);

        var broken = new DataContent(new byte[] { 1, 2, 3, 4 }, "image/png") { Name = "broken.png" };
        var e = await Assert.ThrowsAsync<ClipGenException>(() => generator.GenerateAsync([broken]));
        Assert.Contains("broken.png", e.Message);
        await Assert.ThrowsAsync<ClipGenException>(() => generator.GenerateAsync([new DataContent(new byte[] { 1 }, "text/plain")]));
    }
}
