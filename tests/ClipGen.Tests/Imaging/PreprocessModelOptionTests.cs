using Xunit;

namespace ClipGen.Tests.Imaging;

public class PreprocessModelOptionTests
{
    [Fact]
    public void Preprocess_with_a_model_uses_its_spec_and_matches_the_fixture()
    {
        var dir = TestUtil.TempDir();
        var output = Path.Combine(dir, "px.safetensors");
        var (code, _, err) = TestUtil.Cli("preprocess", "--model", "ViT-B/32", "--image", Fixtures.Path_("preprocess", "images", "coffee.png"), "--output", output);
        Assert.True(code == 0, err);
        using var actual = TestUtil.Read(output);
        using var expected = TestUtil.Read(Fixtures.Path_("preprocess", "expected", "coffee.safetensors"));
        var exp = expected.Tensors.Values.Single();
        var act = actual.Tensors["pixel_values"];
        Assert.Equal(new long[] { 1, 3, 224, 224 }, act.shape);
        TestUtil.AssertClose(exp.reshape(1, 3, 224, 224), act, "pixel_values", rel: 0.016);

        // The demo spec's own normalisation (mean 0.5, std 0.25) and size 32.
        var (code2, _, err2) = TestUtil.Cli("preprocess", "--model", "demo-tiny", "--image", Fixtures.Path_("preprocess", "images", "coffee.png"), "--output", output);
        Assert.True(code2 == 0, err2);
        using var small = TestUtil.Read(output);
        Assert.Equal(new long[] { 1, 3, 32, 32 }, small.Tensors["pixel_values"].shape);
        Assert.True(small.Tensors["pixel_values"].max().item<float>() <= (1 - 0.5f) / 0.25f + 1e-5f);
    }
}
