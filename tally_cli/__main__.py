from tally_cli.entry import main

main()
