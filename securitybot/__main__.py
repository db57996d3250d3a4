from securitybot.cli import main

main()
