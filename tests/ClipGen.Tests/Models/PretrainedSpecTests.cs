using ClipGen.Modeling;
using ClipGen.Specs;
using Xunit;

namespace ClipGen.Tests.Models;

/// <summary><c>pretrained</c> entries: direct URLs and Hugging Face Hub files (<c>repo</c>, <c>file</c>, <c>revision</c>).</summary>
public class PretrainedSpecTests
{
    const string Head = "name: hub-test\nembed_dim: 32\nactivation: quick_gelu\ninit_logit_scale: 2.65\nvision:\n  image_size: 32\n  patch_size: 8\n  layers: 2\n  width: 64\n"
        + "text:\n  context_length: 77\n  vocab_size: 49408\n  width: 8\n  heads: 2\n  layers: 2\ntokenizer:\n  kind: clip_bpe\n"
        + "preprocess:\n  mean: [0.5, 0.5, 0.5]\n  std: [0.5, 0.5, 0.5]\n  interpolation: bicubic\n  resize_mode: shortest\npretrained:\n";

    static SpecResolution Resolve(string pretrained) => SpecResolver.Resolve([SpecDocument.Parse("/specs/hub-test.yaml", Head + pretrained)]);

    [Theory]
    [InlineData("ViT-B-32-quickgelu", "hf", "openai/clip-vit-base-patch32", "model.safetensors", "hf")]
    [InlineData("ViT-B-16-quickgelu", "hf", "openai/clip-vit-base-patch16", "model.safetensors", "hf")]
    [InlineData("ViT-L-14-quickgelu", "hf", "openai/clip-vit-large-patch14", "model.safetensors", "hf")]
    [InlineData("ViT-L-14-336-quickgelu", "hf", "openai/clip-vit-large-patch14-336", "model.safetensors", "hf")]
    [InlineData("ViT-B-32", "laion2b_s34b_b79k", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_pytorch_model.bin", "open_clip")]
    [InlineData("ViT-B-16", "laion2b_s34b_b88k", "laion/CLIP-ViT-B-16-laion2B-s34B-b88K", "open_clip_pytorch_model.bin", "open_clip")]
    [InlineData("ViT-L-14", "laion2b_s32b_b82k", "laion/CLIP-ViT-L-14-laion2B-s32B-b82K", "open_clip_pytorch_model.bin", "open_clip")]
    [InlineData("ViT-H-14", "laion2b_s32b_b79k", "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", "open_clip_pytorch_model.bin", "open_clip")]
    [InlineData("ViT-g-14", "laion2b_s12b_b42k", "laion/CLIP-ViT-g-14-laion2B-s12B-b42K", "open_clip_pytorch_model.bin", "open_clip")]
    [InlineData("ViT-bigG-14", "laion2b_s39b_b160k", "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k", "open_clip_pytorch_model.bin", "open_clip")]
    [InlineData("ViT-B-16-SigLIP", "webli", "timm/ViT-B-16-SigLIP", "open_clip_model.safetensors", "open_clip")]
    [InlineData("ViT-L-14-CLIPA", "datacomp1b", "UCSC-VLAA/ViT-L-14-CLIPA-datacomp1B", "open_clip_pytorch_model.bin", "open_clip")]
    public void Built_in_specs_list_their_Hub_repository_unpinned(string model, string tag, string repo, string file, string format)
    {
        // open_clip's pretrained tags (laion2b_s34b_b79k, webli, …); "hf" is OpenAI's release in Hugging Face's format.
        var hf = Assert.Single(ModelRegistry.Get(model).Spec.Pretrained, p => p.Source == tag);
        Assert.Equal((repo, file, "main", format, ""), (hf.Repo, hf.File, hf.Revision, hf.Format, hf.Sha256));
        Assert.Equal($"https://huggingface.co/{repo}/resolve/main/{file}", hf.Url);
        Assert.True(hf.IsHub);
    }

    [Fact]
    public void ResNets_and_OpenAI_entries_have_no_Hub_file()
    {
        foreach (var entry in ModelRegistry.All)
        {
            var spec = entry.Spec;
            if (spec.Vision.Kind != VisionKind.VisionTransformer) Assert.DoesNotContain(spec.Pretrained, p => p.Format == "hf");
            Assert.All(spec.Pretrained.Where(p => p.Source == "openai"), p => Assert.False(p.IsHub));
            Assert.All(spec.Pretrained.Where(p => p.Source == "openai"), p => Assert.Matches("^[0-9a-f]{64}$", p.Sha256));
        }
    }

    [Fact]
    public void A_pinned_revision_and_sha256_make_the_url_and_round_trip_through_the_writer()
    {
        var res = Resolve("  hf:\n    repo: someone/clip-model\n    file: sub/model.safetensors\n    revision: refs/pr/1\n"
            + "    sha256: ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789\n    format: hf\n");
        Assert.Empty(res.Diagnostics);
        var p = Assert.Single(Assert.Single(res.Specs).Pretrained);
        Assert.Equal("https://huggingface.co/someone/clip-model/resolve/refs%2Fpr%2F1/sub/model.safetensors", p.Url);
        Assert.Equal("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", p.Sha256);
        var again = SpecResolver.Resolve([SpecDocument.Parse("/specs/again.yaml", SpecYamlWriter.Write(res.Specs[0]))]);
        Assert.Empty(again.Diagnostics);
        Assert.Equal(res.Specs[0].Pretrained, again.Specs[0].Pretrained);
    }

    [Theory]
    [InlineData("  hf:\n    url: https://example.com/a.bin\n    repo: a/b\n    file: a.bin\n", "CLIPGEN005", "has both 'url' and 'repo'")]
    [InlineData("  hf:\n    repo: a/b\n", "CLIPGEN003", "missing required field 'file'")]
    [InlineData("  hf:\n    file: a.bin\n", "CLIPGEN003", "needs 'url' (a direct download) or 'repo' and 'file'")]
    [InlineData("  hf:\n    repo: just-a-name\n    file: a.bin\n", "CLIPGEN005", "repo must be '<owner>/<name>'")]
    [InlineData("  hf:\n    repo: a/b\n    file: ../etc/passwd\n", "CLIPGEN005", "file must be a relative path")]
    [InlineData("  hf:\n    repo: a/b\n    file: a.bin\n    revision: \"main branch\"\n", "CLIPGEN005", "revision must be a branch, tag or commit")]
    [InlineData("  x:\n    url: https://example.com/a.bin\n    revision: main\n", "CLIPGEN005", "'file' and 'revision' belong to a Hugging Face Hub entry")]
    [InlineData("  hf:\n    repo: a/b\n    file: a.bin\n    format: openclip\n", "CLIPGEN005", "did you mean 'open_clip'?")]
    public void Malformed_Hub_entries_are_diagnosed(string pretrained, string id, string message)
    {
        var d = Assert.Single(Resolve(pretrained).Diagnostics);
        Assert.Equal(id, d.Id);
        Assert.Contains(message, d.Message);
    }
}
