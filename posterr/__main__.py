from posterr.cli import main

main()
