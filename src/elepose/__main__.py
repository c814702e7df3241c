from elepose.cli import main

main()
