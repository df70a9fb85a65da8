from rater.cli import main

main()
