using System.CommandLine;

namespace Engram.Cli.Commands;

/// <summary>The scope a memory belongs to (add) or a listing / bulk delete is limited to.</summary>
internal sealed class ScopeOptions
{
    public ScopeOptions(string verb)
    {
        User = OptionFactory.Text("--user", $"User id to {verb}.", "USER");
        Agent = OptionFactory.Text("--agent", $"Agent id to {verb}.", "AGENT");
        Session = OptionFactory.Text("--session", $"Session (run) id to {verb}.", "SESSION");
        Namespace = OptionFactory.Text("--namespace", $"Namespace to {verb}.", "NAMESPACE");
    }

    public Option<string?> User { get; }

    public Option<string?> Agent { get; }

    public Option<string?> Session { get; }

    public Option<string?> Namespace { get; }

    public void AddTo(Command command)
    {
        command.Options.Add(User);
        command.Options.Add(Agent);
        command.Options.Add(Session);
        command.Options.Add(Namespace);
    }
}
