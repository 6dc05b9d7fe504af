override func viewDidLoad() {
    super.viewDidLoad()
    title = "Home"
}
