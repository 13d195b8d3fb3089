using Engram.Cli;

return await EngramCli.RunAsync(args);
