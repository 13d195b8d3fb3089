using Engram.Core.Common;
using Engram.Tests.Support;

namespace Engram.Tests.Common;

/// <summary>
/// <see cref="DurableFile.Replace"/> swaps a small state file's content whole. That the new content and the rename are
/// synced is what a power cut would show, which a test cannot cut; these check what can be seen: the content, that no
/// temporary file is left, and that the temporary file a killed run left behind is no obstacle.
/// </summary>
public sealed class DurableFileTests : IDisposable
{
    private readonly TempDirectory _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Replace_writes_a_new_file_then_replaces_it_whole_and_leaves_no_temporary_file()
    {
        var path = Path.Combine(_folder.Path, "state.json");
        DurableFile.Replace(path, "{\"a\":1}"u8);
        File.ReadAllText(path).Should().Be("{\"a\":1}");

        DurableFile.Replace(path, "[]"u8);
        File.ReadAllText(path).Should().Be("[]", "the shorter content replaces the file, nothing of the old one stays");
        Directory.GetFiles(_folder.Path).Should().Equal(path);
    }

    [Fact]
    public void A_temporary_file_left_by_a_killed_run_is_overwritten_and_the_old_content_stays_until_the_rename()
    {
        var path = Path.Combine(_folder.Path, "state.json");
        File.WriteAllText(path, "old");
        File.WriteAllText(path + ".tmp", "half-written garbage that is longer than the new content");

        DurableFile.Replace(path, "new"u8);

        File.ReadAllText(path).Should().Be("new");
        File.Exists(path + ".tmp").Should().BeFalse();
    }

    [Fact]
    public void A_missing_folder_is_an_error_not_a_silent_loss()
    {
        var path = Path.Combine(_folder.Path, "missing", "state.json");
        var write = () => DurableFile.Replace(path, "x"u8);
        write.Should().Throw<DirectoryNotFoundException>();
    }
}
